"""TensorRT engine segments: one execution context per predictor, run on the predictor's stream."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from hybridtrt.errors import ExecutionError, InputError
from hybridtrt.trt.api import Profile, TensorRTFailure, TrtContext, TrtEngine
from hybridtrt.trt.profiles import select_profile

__all__ = ["EngineMemory", "EngineSegment"]

_LOG = logging.getLogger("hybridtrt")

Shape = tuple[int, ...]


class EngineMemory(Protocol):
    """What an engine segment needs from the predictor's device."""

    stream: int

    def shape_of(self, value: Any) -> Shape: ...

    def pointer(self, name: str, value: Any) -> tuple[int, Any]:
        """The device address of ``value`` and an object to keep alive while it is in use."""
        ...

    def host_pointer(self, name: str, value: Any) -> tuple[int, Any]:
        """A host address of ``value`` (shape tensors TensorRT reads on the host)."""
        ...

    def allocate(self, shape: Shape, dtype: np.dtype) -> tuple[Any, int]:
        """A new device value of this shape and its address."""
        ...

    def view(self, owner: Any, pointer: int, shape: Shape, dtype: np.dtype) -> Any:
        """A value over memory ``allocate`` made (for outputs whose shape data decides)."""
        ...

    def after_engine(self) -> None:
        """Called after each engine run (synchronizes when other streams must see the outputs)."""
        ...


class EngineSegment:
    """Runs one TensorRT engine: picks the profile, sets shapes and addresses only when they
    change, and allocates outputs on the device so the next segment reads them in place.

    Args:
        name: The engine's name (used in every error).
        engine: The deserialized engine.
        profiles: The engine's optimization profiles, in build order.
        memory: The predictor's device.
        rebuild: Called with the current profiles and the out-of-range input shapes to get an
            engine with wider profiles (``config.allow_rebuild()``); None makes such shapes an error.
        profiler: Receives ``(layer name, milliseconds)`` for every layer of every run.
    """

    def __init__(self, name: str, engine: TrtEngine, profiles: Sequence[Profile],
                 memory: EngineMemory,
                 rebuild: Callable[[Sequence[Profile], Mapping[str, Shape]], tuple[TrtEngine, Sequence[Profile]]] | None = None,
                 profiler: Callable[[str, float], None] | None = None) -> None:
        self.name = name
        self.memory = memory
        self._rebuild = rebuild
        self._profiler = profiler
        self._use(engine, profiles)

    def _use(self, engine: TrtEngine, profiles: Sequence[Profile]) -> None:
        self.engine = engine
        self.profiles = tuple(profiles)
        self.context: TrtContext = engine.create_context()
        if self._profiler is not None:
            self.context.set_profiler(self._profiler)
        self._profile: int | None = None
        self._shapes: dict[str, Shape] = {}
        self._addresses: dict[str, int] = {}

    def run(self, inputs: Mapping[str, Any], outputs: Sequence[str]) -> list[Any]:
        """Run on ``inputs`` (by name) and return ``outputs`` (by name) as device values."""
        try:
            return self._run(inputs, outputs)
        except TensorRTFailure as exc:
            raise ExecutionError(f"engine {self.name}: {exc}") from exc

    def _run(self, inputs: Mapping[str, Any], outputs: Sequence[str]) -> list[Any]:
        missing = [n for n in self.engine.inputs if n not in inputs]
        if missing:
            raise ExecutionError(f"engine {self.name}: no value for input(s) {missing}")
        shapes = {n: tuple(self.memory.shape_of(inputs[n])) for n in self.engine.inputs}
        self._select_profile(shapes)
        for name, shape in shapes.items():
            if self._shapes.get(name) != shape:
                self.context.set_input_shape(name, shape)
                self._shapes[name] = shape
        alive = [self._bind_input(name, inputs[name]) for name in self.engine.inputs]
        produced, deferred = {}, {}
        for name in self.engine.outputs:
            shape = self.context.output_shape(name)
            dtype = self.engine.dtype(name)
            if any(d < 0 for d in shape):
                deferred[name] = self._allocator(name, dtype)
                continue
            value, pointer = self.memory.allocate(shape, dtype)
            self._set_address(name, pointer)
            produced[name] = value
        self.context.execute(self.memory.stream)
        self.memory.after_engine()
        for name, (buffers, dtype) in deferred.items():
            owner, pointer = buffers[-1] if buffers else (None, 0)
            produced[name] = self.memory.view(owner, pointer, self.context.allocated_shape(name), dtype)
        del alive  # inputs staged for this run stay alive until the engine has run
        unknown = [n for n in outputs if n not in produced]
        if unknown:
            raise ExecutionError(f"engine {self.name} has no output(s) {unknown}")
        return [produced[n] for n in outputs]

    def _select_profile(self, shapes: Mapping[str, Shape]) -> None:
        if not self.profiles:
            index: int | None = 0
        else:
            index = select_profile(shapes, self.profiles)
        if index is None:
            if self._rebuild is None:
                raise InputError(outside_profiles(self.name, shapes, self.profiles))
            _LOG.warning("engine %s: shapes %s are outside its profiles; rebuilding it wider",
                         self.name, {n: list(s) for n, s in shapes.items()})
            self._use(*self._rebuild(self.profiles, shapes))
            index = select_profile(shapes, self.profiles)
            if index is None:
                raise ExecutionError(f"engine {self.name}: the rebuilt engine still does not "
                                     f"hold shapes {dict(shapes)}")
        if index != self._profile:
            self.context.set_profile(index, self.memory.stream)
            self._profile = index
            self._shapes.clear()  # a new profile invalidates the shapes set so far

    def _bind_input(self, name: str, value: Any) -> Any:
        if name in self.engine.host_inputs:
            pointer, keep = self.memory.host_pointer(name, value)
        else:
            pointer, keep = self.memory.pointer(name, value)
        self._set_address(name, pointer)
        return keep

    def _set_address(self, name: str, pointer: int) -> None:
        if self._addresses.get(name) != pointer:
            self.context.set_address(name, pointer)
            self._addresses[name] = pointer

    def _allocator(self, name: str, dtype: np.dtype) -> tuple[list[tuple[Any, int]], np.dtype]:
        buffers: list[tuple[Any, int]] = []

        def allocate(nbytes: int) -> int:
            owner, pointer = self.memory.allocate((nbytes,), np.dtype(np.uint8))
            buffers.append((owner, pointer))
            return pointer

        self.context.use_output_allocator(name, allocate)
        self._addresses.pop(name, None)
        return buffers, dtype


def outside_profiles(engine: str, shapes: Mapping[str, Shape], profiles: Sequence[Profile]) -> str:
    """The error text for shapes no profile of ``engine`` holds."""
    ranges = " | ".join(
        ", ".join(f"{n}: {list(p[n]['min'])}..{list(p[n]['max'])}" for n in shapes if n in p)
        for p in profiles)
    got = ", ".join(f"{n}: {list(s)}" for n, s in shapes.items())
    return (f"engine {engine} was built for {ranges}; got {got}. Convert again with a wider "
            "Input range, or call config.allow_rebuild()")
