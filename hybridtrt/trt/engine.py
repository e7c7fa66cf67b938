"""Stage 5: the place where each cluster gets a TensorRT engine (a builder plugs in here)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import onnx

from hybridtrt.trt.api import ParserVerdict

__all__ = ["BuildResult", "EngineBuilder", "NotBuilding"]


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """What a builder made of one cluster.

    Attributes:
        plan: Serialized TensorRT engine, or b"" when none was built.
        reason: Why no engine was built when the builder did not try ("" otherwise).
        error: TensorRT's error text when it refused the cluster ("" otherwise); the compiler
            then bisects the cluster.
        fingerprint: TensorRT version and GPU compute capability the plan is for.
        from_cache: The plan came from the engine cache.
    """

    plan: bytes = b""
    reason: str = ""
    error: str = ""
    fingerprint: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    from_cache: bool = False


class EngineBuilder(Protocol):
    """Builds one engine from a cluster's self-contained ONNX model."""

    def parser_support(self, model: onnx.ModelProto) -> ParserVerdict | None:
        """TensorRT's parser's per-node answer for the cluster (None: no parser to ask)."""
        ...

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

    def parser_support(self, model: onnx.ModelProto) -> ParserVerdict | None:
        return None

    def build(
        self,
        name: str,
        model: onnx.ModelProto,
        profiles: Sequence[Mapping[str, Mapping[str, list[int]]]],
        settings: Mapping[str, Any],
    ) -> BuildResult:
        return BuildResult(reason=self.reason)
