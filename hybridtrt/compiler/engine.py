"""Stage 5: the place where each cluster gets a TensorRT engine (a builder plugs in here)."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import onnx

__all__ = ["BuildResult", "EngineBuilder", "NotBuilding", "default_builder"]


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """What a builder made of one cluster.

    Attributes:
        plan: Serialized TensorRT engine, or b"" when none was built.
        reason: Why no engine was built ("" when one was).
        fingerprint: TensorRT version and GPU compute capability the plan is for.
    """

    plan: bytes = b""
    reason: str = ""
    fingerprint: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class EngineBuilder(Protocol):
    """Builds one engine from a cluster's self-contained ONNX model."""

    def build(
        self,
        name: str,
        model: onnx.ModelProto,
        profiles: Sequence[Mapping[str, Mapping[str, list[int]]]],
        settings: Mapping[str, Any],
    ) -> BuildResult: ...


@dataclasses.dataclass(frozen=True)
class NotBuilding:
    """A builder that builds nothing and says why (used when TensorRT cannot build here)."""

    reason: str

    def build(
        self,
        name: str,
        model: onnx.ModelProto,
        profiles: Sequence[Mapping[str, Mapping[str, list[int]]]],
        settings: Mapping[str, Any],
    ) -> BuildResult:
        return BuildResult(reason=self.reason)


def default_builder() -> EngineBuilder:
    """The builder ``convert`` uses when none is given."""
    if importlib.util.find_spec("tensorrt") is None:
        return NotBuilding("TensorRT is not installed; the engine runs through ONNX Runtime "
                           "until it is built on a TensorRT host")
    return NotBuilding("this hybridtrt version does not build TensorRT engines yet; the engine "
                       "runs through ONNX Runtime")
