"""Online conversion: Paddle 2.x settings -> ``TensorRTConfig`` -> ``convert``, cached."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx

from hybridtrt.core.hybrid import HybridModel, load
from hybridtrt.compiler.pipeline import convert
from hybridtrt.compiler.precision.stage import carries_qdq
from hybridtrt.compiler.shape_info import read_shape_range_info
from hybridtrt.config import Input, PrecisionMode, TensorRTConfig
from hybridtrt.errors import ConfigError
from hybridtrt.online.settings import OnlineTensorRT, PrecisionType
from hybridtrt.online.store import OptCache
from hybridtrt.trt.api import TrtBackend
from hybridtrt.trt.builder import default_builder

__all__ = ["INT8_NEEDS", "OnlineBuild", "model_ranks", "tensorrt_config"]

_LOG = logging.getLogger("hybridtrt.online")
_MEMO: dict[str, HybridModel] = {}  # per process: threads asking for the same build share it
INT8_NEEDS = ("PrecisionType.Int8 needs scales: use_calib_mode=True (calibrate on the first runs), "
              "or a model with QuantizeLinear/DequantizeLinear nodes")


def model_ranks(model: onnx.ModelProto) -> dict[str, int]:
    """``{graph input: rank}`` (initializers excluded)."""
    weights = {t.name for t in model.graph.initializer}
    return {i.name: len(i.type.tensor_type.shape.dim) for i in model.graph.input
            if i.name not in weights}


def _profile(online: OnlineTensorRT, model: onnx.ModelProto,
             ranks: Mapping[str, int]) -> list[Input]:
    if online.tuned_shape_path:
        return read_shape_range_info(Path(online.tuned_shape_path), model).profile_inputs()
    low, high, opt = (dict(t) for t in (online.min_shapes, online.max_shapes, online.opt_shapes))
    for name in low:
        if name not in ranks:
            raise ConfigError(f"set_trt_dynamic_shape_info names {name!r}, which is not an input "
                              f"of this model (inputs: {sorted(ranks)})")
    return [Input(name=n, min_input_shape=low[n], optim_input_shape=opt[n],
                  max_input_shape=high[n]) for n in sorted(low)]


def tensorrt_config(online: OnlineTensorRT, inputs: Sequence[Input], calibration: Any = None,
                    table: Path | None = None) -> TensorRTConfig:
    """The offline ``TensorRTConfig`` that means the same as these Paddle settings."""
    tuned = online.tuned_shape_path
    return TensorRTConfig(inputs=() if tuned else inputs, shape_range_info=tuned,
                          min_subgraph_size=online.min_subgraph_size,
                          disable_ops=online.disabled_ops,
                          precision_mode=PrecisionMode(online.precision.value),
                          workspace_size=online.workspace_size, calibration_data=calibration,
                          calibration_cache=None if table is None else str(table))


class OnlineBuild:
    """The build one predictor asks for: its config, its ``_opt_cache`` entry, and the build.

    Args:
        model_path: The plain ONNX model.
        online: The online settings.
        backend: TensorRT behind its narrow interface (default: the installed one, if any).
    """

    def __init__(self, model_path: Path, online: OnlineTensorRT,
                 backend: TrtBackend | None = None) -> None:
        self.model_path = model_path
        self.online = online
        self.backend = backend
        self.model = onnx.load(str(model_path), load_external_data=False)
        self.ranks = model_ranks(self.model)
        self.inputs = _profile(online, self.model, self.ranks)
        profile: list[Any] = [i.shapes() for i in self.inputs]
        if online.tuned_shape_path:  # every recorded tensor range can change the build
            profile.append(Path(online.tuned_shape_path).read_text())
        self.cache = OptCache(model_path, online, profile)
        if online.use_static:
            self.cache.check_writable("use_static=True keeps the built model",
                                      "use use_static=False")
        if self.int8 and online.use_calib_mode:
            self.cache.check_writable("use_calib_mode=True keeps the calibration table",
                                      "copy the model to a writable folder")

    @property
    def int8(self) -> bool:
        return self.online.precision is PrecisionType.Int8

    def needs_calibration(self) -> bool:
        """Int8 in calibration mode with no table yet: run FP32 and collect feeds first."""
        return (self.int8 and self.online.use_calib_mode
                and not self.cache.calibration_table.is_file())

    def plain(self) -> HybridModel:
        """The original model, unconverted (the predictor runs it in ONNX Runtime while it
        collects shapes or calibration feeds)."""
        return HybridModel(onnx.load(str(self.model_path)))

    def hybrid(self, calibration: Any = None) -> HybridModel:
        """The hybrid model: from memory or ``_opt_cache/`` when built before, else converted."""
        if self.int8 and not self.online.use_calib_mode and not carries_qdq(self.model):
            raise ConfigError(INT8_NEEDS)
        persist = self.online.use_static
        with self.cache.building(across_processes=persist):
            target = self.cache.model_file  # names the folder too: one entry per model file
            if str(target) in _MEMO:
                return _MEMO[str(target)]
            if persist and target.is_file():
                _LOG.info("online TensorRT: loaded %s from _opt_cache (no conversion)", target.name)
                hybrid = load(target)
            else:
                hybrid = self._convert(calibration)
                if persist:
                    hybrid.save(target)
                    _LOG.info("online TensorRT: saved %s to _opt_cache", target.name)
            _MEMO[str(target)] = hybrid
            return hybrid

    def _convert(self, calibration: Any) -> HybridModel:
        table = None
        if self.int8 and self.online.use_calib_mode:
            table = self.cache.calibration_table
            table.parent.mkdir(parents=True, exist_ok=True)
        _LOG.info("online TensorRT: converting %s (%s)", self.model_path.name,
                  self.online.precision.name)
        config = tensorrt_config(self.online, self.inputs, calibration, table)
        if self.online.use_static:
            config = dataclasses.replace(config, cache_dir=str(self.cache.engine_cache))
        builder = (None if self.backend is None else
                   default_builder(config.cache_dir, config.device_id, self.backend))
        return convert(str(self.model_path), config, builder=builder)
