"""The narrow interface to TensorRT: plain data in, plain data out, three small protocols.

The compiler and the runtime see TensorRT only through ``TrtBackend``, ``TrtEngine`` and
``TrtContext``. The real implementation (``tensorrt_backend`` and the ``tensorrt_*`` modules it
uses) is the only code that calls TensorRT; ``backends.load_backend`` imports it once a library is bound
(so a process without TensorRT never does). Tests put fakes in its place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

__all__ = [
    "BuildOutput",
    "BuildSpec",
    "BuildTarget",
    "GpuInfo",
    "HARDWARE_COMPATIBILITY",
    "ParserVerdict",
    "Profile",
    "TensorRTFailure",
    "TrtBackend",
    "TrtContext",
    "TrtEngine",
]

Profile = Mapping[str, Mapping[str, Sequence[int]]]
"""One optimization profile: ``{input name: {"min": [...], "opt": [...], "max": [...]}}``."""

HARDWARE_COMPATIBILITY = ("none", "ampere_plus", "same_compute_capability")


class TensorRTFailure(Exception):
    """TensorRT refused something; the message is TensorRT's own error text.

    Internal to the compiler and runtime: they turn it into a user error, a bisection step or
    an ONNX Runtime fallback, naming the engine.

    Attributes:
        node: Index of the subgraph node TensorRT's parser blamed, when it named one.
    """

    def __init__(self, message: str, node: int | None = None) -> None:
        super().__init__(message)
        self.node = node


@dataclasses.dataclass(frozen=True)
class GpuInfo:
    """The GPU an engine is built for or runs on."""

    name: str
    compute_capability: str


@dataclasses.dataclass(frozen=True)
class BuildTarget:
    """What a build makes plans for.

    Attributes:
        gpu: The GPU the plans run on (TensorRT-RTX: its name lists the targets, and
            ``compute_capability`` holds them joined by commas).
        compute_capabilities: TensorRT-RTX: the compute capabilities the plans are built for.
        can_strip: Whether weight-stripped plans can be built here.
    """

    gpu: GpuInfo
    compute_capabilities: tuple[str, ...] = ()
    can_strip: bool = True


@dataclasses.dataclass(frozen=True)
class BuildSpec:
    """Everything a TensorRT build takes besides the ONNX subgraph.

    Attributes:
        profiles: One ``Profile`` per optimization profile (empty: a fully static subgraph).
        workspace_size: Builder workspace limit in bytes.
        optimization_level: Builder optimization level, 0..5.
        hardware_compatibility: One of ``HARDWARE_COMPATIBILITY``.
        strip_weights: Build a weight-stripped plan (refitted at load from the subgraph).
        timing_cache: A serialized timing cache to start from (b"" for none).
        compute_capabilities: TensorRT-RTX: the compute capabilities to build for.
    """

    profiles: tuple[Profile, ...]
    workspace_size: int
    optimization_level: int
    hardware_compatibility: str = "none"
    strip_weights: bool = True
    timing_cache: bytes = b""
    compute_capabilities: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class BuildOutput:
    """A serialized plan and the timing cache as it stands after the build."""

    plan: bytes
    timing_cache: bytes


@dataclasses.dataclass(frozen=True)
class ParserVerdict:
    """TensorRT's ONNX parser's answer for a subgraph.

    Attributes:
        supported: Indices of the subgraph's nodes the parser can turn into TensorRT layers.
        reasons: Parser error text for rejected nodes, by node index.
    """

    supported: frozenset[int]
    reasons: Mapping[int, str] = dataclasses.field(default_factory=dict)


class TrtContext(Protocol):
    """One execution context (one per predictor clone)."""

    def set_profile(self, index: int, stream: int) -> None: ...

    def set_input_shape(self, name: str, shape: Sequence[int]) -> None: ...

    def output_shape(self, name: str) -> tuple[int, ...]:
        """The output's shape for the current input shapes (-1 where data decides)."""
        ...

    def set_address(self, name: str, pointer: int) -> None: ...

    def use_output_allocator(self, name: str, allocate: Callable[[int], int]) -> None:
        """Let TensorRT ask ``allocate(nbytes) -> pointer`` for a data-dependent output."""
        ...

    def allocated_shape(self, name: str) -> tuple[int, ...]:
        """The final shape of an allocator-backed output after ``execute``."""
        ...

    def execute(self, stream: int) -> None: ...

    def set_profiler(self, report: Callable[[str, float], None] | None) -> None:
        """Per-layer times ``report(layer name, milliseconds)`` after each run (None: off)."""
        ...


class TrtEngine(Protocol):
    """A deserialized (and, for stripped plans, refitted) engine."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    host_inputs: frozenset[str]  # shape tensors TensorRT reads from host memory

    def dtype(self, name: str) -> np.dtype: ...

    def create_context(self) -> TrtContext: ...


class TrtBackend(Protocol):
    """What hybridtrt needs from TensorRT."""

    library: str  # "tensorrt" or "tensorrt_rtx"
    version: str

    def unusable_reason(self, device: str, device_id: int) -> str:
        """Why engines cannot run on this device ("" when they can)."""
        ...

    def gpu(self, device_id: int) -> GpuInfo: ...

    def build_unusable_reason(self, device_id: int) -> str:
        """Why engines cannot be built here ("" when they can)."""
        ...

    def build_target(self, device_id: int, compute_capabilities: Sequence[str]) -> BuildTarget:
        """What builds here make plans for (``compute_capabilities``: TensorRT-RTX targets)."""
        ...

    def parse_support(self, model: bytes, path: str | None = None) -> ParserVerdict:
        """Which nodes the parser takes; ``path`` (given only when the model has external data)
        names a file in the folder its data ``location`` is relative to."""
        ...

    def build(self, model: bytes, spec: BuildSpec, progress: Callable[[str], None],
              path: str | None = None) -> BuildOutput:
        """Parse and build (``path`` as for ``parse_support``); raises ``TensorRTFailure`` with
        TensorRT's error text."""
        ...

    def deserialize(self, plan: bytes, refit_model: bytes | None) -> TrtEngine:
        """Load a plan; ``refit_model`` (the subgraph with its weights) refits a stripped one."""
        ...
