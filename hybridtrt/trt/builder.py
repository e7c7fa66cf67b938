"""The TensorRT engine builder: engine cache first, then a strongly typed TensorRT build."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import onnx
from google.protobuf.message import EncodeError

from hybridtrt.core.external import is_large
from hybridtrt.core.references import inlined_model, parser_input
from hybridtrt.trt.engine import BuildResult, EngineBuilder, NotBuilding
from hybridtrt.core.format import subgraph_digest
from hybridtrt.trt.api import BuildSpec, ParserVerdict, TensorRTFailure, TrtBackend, TrtEngine
from hybridtrt.trt.backends import load_backend
from hybridtrt.trt.cache import EngineCache, cache_key
from hybridtrt.trt.fingerprint import plan_fingerprint
from hybridtrt.trt.library import TENSORRT
from hybridtrt.trt.verdicts import VerdictMemo

__all__ = ["TensorRTBuilder", "content_digest", "default_builder", "deserialize_plan", "engine_key"]

_LOG = logging.getLogger("hybridtrt")


def content_digest(graph: onnx.GraphProto) -> str:
    """``subgraph_digest`` without the graph's name (engine names may shift between runs)."""
    return subgraph_digest(graph, name="")  # hashed without copying the graph


def engine_key(graph: onnx.GraphProto, profiles: Sequence[Mapping[str, Any]],
               settings: Mapping[str, Any], tensorrt_version: str, compute_capability: str) -> str:
    """The engine-cache key of one subgraph built with these profiles and settings here."""
    return cache_key(content_digest(graph), profiles, settings, tensorrt_version,
                     compute_capability)


def _parser_input(model: onnx.ModelProto) -> tuple[bytes, dict[str, str]]:
    """The serialized subgraph, and the ``path`` argument when its weights are left in the
    source model's data file (``core.references``: TensorRT's parser reads them there)."""
    if is_large(model):  # the build fails; bisection splits the cluster into pieces that fit
        raise TensorRTFailure("the subgraph's weights are over protobuf's 2 GiB limit, and "
                              "TensorRT's ONNX parser is given the subgraph serialized")
    plain, path = parser_input(model)
    try:
        data = plain.SerializeToString(deterministic=True)
    except (ValueError, EncodeError) as exc:  # protobuf's 2 GiB limit
        raise TensorRTFailure(f"the subgraph cannot be serialized for TensorRT: {exc}") from exc
    return data, ({"path": path} if path is not None else {})


class TensorRTBuilder:
    """Builds engines with ``backend`` on GPU ``device_id``, through the engine cache.

    Args:
        backend: TensorRT (or a fake behind the same interface).
        cache: Where plans and the timing cache are kept.
        device_id: The GPU that builds (plans are tied to its compute capability).
    """

    def __init__(self, backend: TrtBackend, cache: EngineCache, device_id: int = 0,
                 compute_capabilities: Sequence[str] = ()) -> None:
        self.backend = backend
        self.cache = cache
        self.target = backend.build_target(device_id, compute_capabilities)
        self.gpu = self.target.gpu
        self._timing = cache.timing_cache(self._version, self.gpu.compute_capability)
        self._verdicts = VerdictMemo()

    @property
    def _version(self) -> str:
        """The library and version, as cache keys tell them apart."""
        library = self.backend.library
        return self.backend.version if library == TENSORRT else f"{library}-{self.backend.version}"

    def parser_support(self, model: onnx.ModelProto) -> ParserVerdict | None:
        if is_large(model):
            return None  # no verdict: the build refuses it, and bisection splits it
        return self._verdicts.verdict(model, self._parse)

    def _parse(self, model: onnx.ModelProto) -> ParserVerdict:
        data, path = _parser_input(model)
        return self.backend.parse_support(data, **path)

    def build(self, name: str, model: onnx.ModelProto,
              profiles: Sequence[Mapping[str, Mapping[str, list[int]]]],
              settings: Mapping[str, Any]) -> BuildResult:
        version, capability = self._version, self.gpu.compute_capability
        requested = bool(settings.get("strip_weights", True))
        strip = requested and self.target.can_strip
        if strip != requested:
            _LOG.info("engine %s: a full plan (weight-stripped plans need a GPU at build time)", name)
        key = engine_key(model.graph, profiles, {**settings, "strip_weights": strip}, version,
                         capability)
        fingerprint = plan_fingerprint(self.backend.version, self.gpu,
                                       str(settings.get("hardware_compatibility", "none")),
                                       self.backend.library, strip)
        cached = self.cache.get(key)  # plans are written atomically: a hit needs no lock
        if cached is not None:
            _LOG.info("engine %s: taken from the engine cache (%s)", name, key[:16])
            return BuildResult(cached, fingerprint=fingerprint, from_cache=True)
        with self.cache.building(key):
            cached = self.cache.get(key)  # another process may have built it meanwhile
            if cached is not None:
                _LOG.info("engine %s: taken from the engine cache (%s)", name, key[:16])
                return BuildResult(cached, fingerprint=fingerprint, from_cache=True)
            spec = BuildSpec(
                profiles=tuple(profiles),
                workspace_size=int(settings.get("workspace_size", 1 << 30)),
                optimization_level=int(settings.get("optimization_level", 3)),
                hardware_compatibility=str(settings.get("hardware_compatibility", "none")),
                strip_weights=strip,
                timing_cache=self._timing,
                compute_capabilities=self.target.compute_capabilities,
            )
            _LOG.info("engine %s: building with %s for %s", name, version, self.gpu.name)
            try:
                data, path = _parser_input(model)
                out = self.backend.build(data, spec,
                                         lambda step: _LOG.info("engine %s: %s", name, step), **path)
            except TensorRTFailure as exc:
                _LOG.info("engine %s: TensorRT refused it: %s", name, exc)
                return BuildResult(error=str(exc), fingerprint=fingerprint)
            self.cache.put(key, out.plan)
        if out.timing_cache:
            self._timing = out.timing_cache
            self.cache.save_timing_cache(version, capability, self._timing)
        _LOG.info("engine %s: built (%d bytes)", name, len(out.plan))
        return BuildResult(out.plan, fingerprint=fingerprint)


def default_builder(cache_dir: Any = None, device_id: int = 0,
                    backend: TrtBackend | None = None, library: str = "auto",
                    compute_capabilities: Sequence[str] = ()) -> EngineBuilder:
    """TensorRT when it can build here; otherwise a builder that says why nothing is built.

    ``library`` picks the TensorRT library (``hybridtrt.trt.load_backend``);
    ``compute_capabilities`` are TensorRT-RTX's build targets.
    """
    if backend is None:
        backend, reason = load_backend(library)
        if backend is None:
            return NotBuilding(f"{reason}; the engine runs through ONNX Runtime until it is built "
                               "on a TensorRT host")
    unusable = backend.build_unusable_reason(device_id)
    if unusable:
        return NotBuilding(f"{unusable}; the engine runs through ONNX Runtime until it is built "
                           "on a TensorRT host")
    return TensorRTBuilder(backend, EngineCache(cache_dir), device_id, compute_capabilities)


def deserialize_plan(backend: TrtBackend, plan: bytes, model: onnx.ModelProto,
                     stripped: bool) -> TrtEngine:
    """The engine of ``plan``; a weight-stripped plan is refit from ``model``, its subgraph
    (raises ``TensorRTFailure``)."""
    refit = inlined_model(model).SerializeToString(deterministic=True) if stripped else None
    return backend.deserialize(plan, refit)
