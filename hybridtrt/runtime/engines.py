"""Getting a runnable TensorRT engine for each engine node at load: the stored plan when it fits
this TensorRT and GPU, else a build from the embedded subgraph (through the engine cache)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import onnx

from hybridtrt.trt.builder import TensorRTBuilder, deserialize_plan
from hybridtrt.errors import ExecutionError
from hybridtrt.core.format import STATUS_BUILT, EngineRecord
from hybridtrt.trt.api import Profile, TensorRTFailure, TrtBackend, TrtEngine
from hybridtrt.trt.cache import EngineCache
from hybridtrt.trt.fingerprint import incompatibility
from hybridtrt.trt.profiles import widen

__all__ = ["EngineLoader", "LoadedEngine"]

_LOG = logging.getLogger("hybridtrt")


@dataclasses.dataclass(frozen=True)
class LoadedEngine:
    """A deserialized engine, the profiles it was built with, and where its plan came from."""

    engine: TrtEngine
    profiles: tuple[Profile, ...]
    origin: str


class EngineLoader:
    """Loads, builds and rebuilds engines for one predictor's TensorRT and GPU.

    Args:
        backend: TensorRT behind the narrow interface.
        device_id: The GPU the engines run on.
        cache_dir: Engine cache directory (None: the default).
        build: Build engines whose plan is missing or does not fit here.
    """

    def __init__(self, backend: TrtBackend, device_id: int, cache_dir: str | None,
                 build: bool = True) -> None:
        self.backend = backend
        self.device_id = device_id
        self.cache_dir = cache_dir
        self.build_allowed = build
        self._builder: TensorRTBuilder | None = None

    def _get_builder(self) -> TensorRTBuilder:
        if self._builder is None:
            self._builder = TensorRTBuilder(self.backend, EngineCache(self.cache_dir), self.device_id)
        return self._builder

    def load(self, record: EngineRecord, model: onnx.ModelProto) -> tuple[LoadedEngine | None, str]:
        """The engine for ``record`` (``model`` is its subgraph as a model), or None and why."""
        if record.status == STATUS_BUILT:
            why = incompatibility(record.fingerprint, self.backend.version,
                                  self.backend.gpu(self.device_id), self.backend.library)
            if not why:
                try:
                    engine = self._deserialize(record.engine, _stripped(record.fingerprint, record), model)
                    return LoadedEngine(engine, tuple(record.profiles), "the stored plan"), ""
                except TensorRTFailure as exc:
                    why = f"TensorRT could not load the stored plan: {exc}"
        else:
            why = record.status_reason or "the engine was not built"
        if not self.build_allowed:
            return None, f"{why} (building engines at load is turned off)"
        return self._build(record, model, tuple(record.profiles), why)

    def _build(self, record: EngineRecord, model: onnx.ModelProto, profiles: tuple[Profile, ...],
               because: str) -> tuple[LoadedEngine | None, str]:
        _LOG.info("engine %s: building it here (%s)", record.name, because)
        result = self._get_builder().build(record.name, model, profiles, record.build_settings)  # type: ignore[arg-type]
        if result.error or not result.plan:
            return None, f"{because}; building it here failed: {result.error or result.reason}"
        try:
            engine = self._deserialize(result.plan, _stripped(result.fingerprint, record), model)
        except TensorRTFailure as exc:
            return None, f"{because}; the engine built here cannot be loaded: {exc}"
        origin = "the engine cache" if result.from_cache else "a build at load"
        return LoadedEngine(engine, profiles, f"{origin} ({because})"), ""

    def rebuild(self, record: EngineRecord, model: onnx.ModelProto,
                profiles: Sequence[Profile], shapes: Mapping[str, tuple[int, ...]]) -> tuple[TrtEngine, tuple[Profile, ...]]:
        """An engine whose first profile is widened to hold ``shapes`` (built or cached)."""
        wider = widen(profiles, shapes)
        loaded, why = self._build(record, model, wider, "input shapes outside its profiles")
        if loaded is None:
            raise ExecutionError(f"engine {record.name}: {why}")
        return loaded.engine, loaded.profiles

    def _deserialize(self, plan: bytes, stripped: bool, model: onnx.ModelProto) -> TrtEngine:
        return deserialize_plan(self.backend, plan, model, stripped)


def _stripped(fingerprint: Mapping[str, Any], record: EngineRecord) -> bool:
    """Whether a plan needs a refit: its fingerprint says (older models: the build setting)."""
    return bool(fingerprint.get("stripped", record.build_settings.get("strip_weights", False)))
