"""Input checks: which feeds a predictor accepts, remembered per input signature."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from hybridtrt.errors import InputError
from hybridtrt.runtime.description import NodeArg
from hybridtrt.runtime.devices import Device, dtype_of
from hybridtrt.runtime.plan import SegmentSpec
from hybridtrt.runtime.signatures import LRU, Signature, signature
from hybridtrt.runtime.trt_segment import outside_profiles
from hybridtrt.trt.profiles import select_profile

__all__ = ["CHECKED_SIGNATURES", "InputChecks", "Signature", "device_signature", "host_signature"]

CHECKED_SIGNATURES = 64  # input signatures remembered as accepted (least recently used go)


def host_signature(feeds: Mapping[str, Any], names: Sequence[str]) -> Signature | None:
    """The signature of ``feeds`` in ``names`` order when they are exactly these inputs, each a
    C-order numpy array (what may skip the checks and go straight to a session); else None."""
    if len(feeds) != len(names):
        return None
    found = []
    for name in names:
        array = feeds.get(name)
        if type(array) is not np.ndarray or not array.flags.c_contiguous:
            return None
        found.append((name, array.shape, array.dtype.str))
    return tuple(found)


def device_signature(feeds: Mapping[str, Any], names: Sequence[str]) -> Signature | None:
    """The signature of ``feeds`` in ``names`` order when they are exactly these inputs, each a
    C-contiguous device array (``__cuda_array_interface__``: cupy, torch); else None."""
    if len(feeds) != len(names):
        return None
    found = []
    for name in names:
        interface = getattr(feeds.get(name), "__cuda_array_interface__", None)
        if interface is None or interface.get("strides") not in (None, ()):
            return None  # (strided views go the checked way, which tells C-order ones apart)
        found.append((name, tuple(interface["shape"]), str(interface["typestr"])))
    return tuple(found)


class InputChecks:
    """Says which feeds a predictor accepts, and remembers the signatures that passed.

    Args:
        inputs: The model's inputs (initializers left out).
        engines: ``(engine name, input names, profiles)`` of every engine with profiles.
        device: The predictor's device (accepts values, reads shapes).
        allow_rebuild: Shapes outside an engine's profiles are let through (it is rebuilt).
        shared: Inputs several segments read: staged once, after the checks passed.
    """

    def __init__(self, inputs: Sequence[NodeArg],
                 engines: Sequence[tuple[str, Sequence[str], Sequence[Any]]], device: Device,
                 allow_rebuild: bool, shared: Sequence[str] = (),
                 stage: Callable[[str, Any], Any] | None = None) -> None:
        self._inputs = list(inputs)
        self._names = [i.name for i in self._inputs]
        self._name_set = frozenset(self._names)
        self._specs = {i.name: i for i in self._inputs}
        self._tensors = [i.name for i in self._inputs if i.type.startswith("tensor(")]
        self._allow_rebuild = allow_rebuild
        self._engines = [] if allow_rebuild else [e for e in engines if e[2]]
        self._device = device
        self._shared = list(shared) if stage is not None else []
        self._stage = stage
        self._passed: LRU[Hashable, bool] = LRU(CHECKED_SIGNATURES)

    def known(self, feeds: Mapping[str, Any]) -> bool:
        """Whether ``feeds`` are C-order host arrays of a signature that passed before."""
        found = host_signature(feeds, self._names)
        return found is not None and found in self._passed

    def accepted(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """``feeds`` as the device runs them; ``InputError`` naming what is wrong otherwise."""
        names = self._names
        if feeds.keys() != self._name_set:
            missing = [n for n in names if n not in feeds]
            extra = sorted(set(feeds) - set(names))
            parts = ([f"missing inputs {missing}"] if missing else []) + (
                [f"unknown inputs {extra} (the model's inputs are {names})"] if extra else [])
            raise InputError("; ".join(parts))
        odd = [n for n in self._tensors if feeds[n] is None or type(feeds[n]) is tuple]
        if odd:
            raise InputError(_not_a_tensor(self._specs[odd[0]], feeds[odd[0]]))
        accept = self._device.accept
        accepted = {name: accept(name, feeds[name]) for name in names}
        key = signature(accepted)
        if key is None or key not in self._passed:
            shape_of = self._device.shape_of
            for spec in self._inputs:
                value = accepted[spec.name]
                if spec.dtype is not None:
                    _check_value(spec, value, shape_of(value))
            for engine, inputs, profiles in self._engines:
                direct = [n for n in inputs if n in accepted]
                if direct:
                    require_fit(engine, {n: shape_of(accepted[n]) for n in direct}, profiles)
            if key is not None:
                self._passed.put(key, True)
        # Only now, once the inputs passed: host arrays that several segments read go to the
        # device once, into buffers kept per shape (a refused call must not take one).
        if self._stage is not None:
            for name in self._shared:
                accepted[name] = self._stage(name, accepted[name])
        return accepted

    def segment_fits(self, spec: SegmentSpec, inputs: Mapping[str, Any]) -> None:
        """An isolated fallback engine's inputs must fit its profiles, as in TensorRT."""
        if self._allow_rebuild or spec.engine is None or not spec.engine.profiles:
            return
        key = (spec.name, signature(inputs))
        if key[1] is not None and key in self._passed:
            return
        shape_of = self._device.shape_of
        require_fit(spec.name, {n: shape_of(v) for n, v in inputs.items()}, spec.engine.profiles)
        if key[1] is not None:
            self._passed.put(key, True)


def _not_a_tensor(spec: NodeArg, value: Any) -> str:
    got = "None" if value is None else type(value).__name__
    return (f"input '{spec.name}' is a tensor ({spec.type}, shape {spec.shape}); got {got}: "
            "pass a numpy array")


def _check_value(spec: NodeArg, value: Any, shape: tuple[int, ...]) -> None:
    dtype = dtype_of(value)
    if spec.dtype is not None and dtype is not None and dtype != spec.dtype:
        raise InputError(f"input '{spec.name}' has dtype {dtype}; the model expects {spec.dtype}")
    if spec.shape and len(shape) != len(spec.shape):
        raise InputError(f"input '{spec.name}' has rank {len(shape)} (shape {list(shape)}); the "
                         f"model expects rank {len(spec.shape)} {spec.shape}")
    for axis, (got, want) in enumerate(zip(shape, spec.shape)):
        if isinstance(want, int) and want > 0 and got != want:
            raise InputError(f"input '{spec.name}' dimension {axis} is {got}; the model fixes it "
                             f"to {want}")


def require_fit(engine: str, shapes: Mapping[str, tuple[int, ...]],
                profiles: Sequence[Mapping[str, Mapping[str, list[int]]]]) -> None:
    """Raise InputError naming the engine and its ranges unless one profile holds ``shapes``."""
    if select_profile(shapes, profiles) is None:
        raise InputError(outside_profiles(engine, shapes, profiles))
