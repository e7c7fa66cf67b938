"""Stage 5: write each cluster's precision into its graph before the build.

TensorRT 11 builds strongly typed networks only (no FP16/INT8 builder flags, no calibrators),
and TensorRT 10 built strongly typed gives the same result, so precision is a graph
transformation: FP16/BF16 clusters are cast inside with FP32 at their boundary (``lowp``),
INT8 clusters keep the model's Q/DQ nodes or get calibrated ones (``calibration`` and ``int8``).
ONNX Runtime runs the transformed clusters too, so every mode is testable without TensorRT.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from hybridtrt.compiler.precision import accuracy, calibration, guards, int8, lowp, sensitivity
from hybridtrt.compiler.precision.measure import EngineRuns, topologically_sorted
from hybridtrt.core.graph import GraphIndex
from hybridtrt.core.loading import LoadedModel, load_model
from hybridtrt.core.partition import Partition
from hybridtrt.compiler.shapes import RunPlan, record_stats, tensor_values
from hybridtrt.config import PrecisionMode, TensorRTConfig
from hybridtrt.converters.registry import REGISTRY
from hybridtrt.errors import ConfigError, InputError, InternalError
from hybridtrt.core.references import inlined_model
from hybridtrt.ort_support import first_line, runnable_bytes
from hybridtrt.trt.library import rules_library

__all__ = ["PrecisionStage", "Typed", "carries_qdq", "prepare_model", "topologically_sorted"]

_LOG = logging.getLogger("hybridtrt")
_QDQ = ("QuantizeLinear", "DequantizeLinear")
_OPSET_13 = 13  # Cast to BF16 and per-channel DequantizeLinear


@dataclasses.dataclass(frozen=True)
class Typed:
    """A cluster model in its engine's precision, and what the report says of it.

    Attributes:
        model: The model to build (its inputs and outputs keep their original types).
        info: ``{"mode", "fp32_nodes": [[name, op type, reason], ...], "quantize_nodes",
            "quantization"}`` (the last two for INT8).
    """

    model: onnx.ModelProto
    info: dict[str, Any]


def carries_qdq(model: onnx.ModelProto) -> bool:
    """Whether a model already holds QuantizeLinear/DequantizeLinear nodes."""
    return any(n.op_type in _QDQ for n in model.graph.node)


def prepare_model(loaded: LoadedModel, config: TensorRTConfig) -> LoadedModel:
    """The model to partition, raised to opset 13 with onnx's version converter when older and
    the precision needs it: BF16 (Cast to BF16 arrived in opset 13) and INT8 calibration
    (per-channel weight scales arrived in opset 13; per-tensor when the conversion fails).

    Raises:
        ConfigError: BF16 on a model the version converter cannot raise to opset 13.
    """
    mode = config.precision_mode
    opset = loaded.opsets.get("", 1)
    int8_needs = mode is PrecisionMode.INT8 and not carries_qdq(loaded.model)
    if opset >= _OPSET_13 or not (int8_needs or mode is PrecisionMode.BF16):
        return loaded
    try:
        raised = onnx.version_converter.convert_version(loaded.model, _OPSET_13)
    except Exception as exc:  # noqa: BLE001 - the converter raises many error types
        if mode is PrecisionMode.BF16:
            raise ConfigError(f"BF16 needs opset >= 13 (Cast to BF16) and onnx's version "
                              f"converter cannot raise this opset-{opset} model: {exc}") from exc
        _LOG.warning("INT8: cannot raise the model from opset %d to 13 (%s); weights are "
                     "quantized per tensor", opset, exc)
        return loaded
    _LOG.info("%s: model raised from opset %d to 13 with onnx's version converter", mode.name,
              opset)
    return dataclasses.replace(load_model(raised), source=loaded.source)


def fold_layers(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` after ONNX Runtime's basic graph optimizations (constant folding; BatchNorm,
    Add and Mul folded into Conv weights), as TensorRT does at build time.

    Without it a low-precision Conv output is rounded before BatchNorm subtracts its mean, an
    error TensorRT's folded layer never makes, and INT8 would quantize unfolded weights.
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="hybridtrt-fold-") as folder:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(Path(folder) / "folded.onnx")
        options.log_severity_level = 3
        try:
            ort.InferenceSession(runnable_bytes(model), options, providers=["CPUExecutionProvider"])
            folded = onnx.load(options.optimized_model_filepath)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
            _LOG.warning("cannot fold the cluster's layers with ONNX Runtime (%s); lowering it "
                         "as it is", first_line(exc))
            return model
    folded.ir_version = model.ir_version
    folded.graph.name = model.graph.name
    return folded


class PrecisionStage:
    """Turns cluster models into typed models for one conversion.

    Warm-up statistics (FP16/BF16 guard) and calibration (INT8) are gathered once, for all
    clusters, by ``prepare``; ``apply`` then works per cluster (bisection pieces included).
    """

    def __init__(self, index: GraphIndex, plans: Sequence[RunPlan], config: TensorRTConfig) -> None:
        self.index = index
        self.plans = plans
        self.config = config
        self.mode = config.precision_mode
        self.stats: dict[str, guards.TensorStats] = {}
        self.calibration: calibration.Calibration | None = None
        self.model_qdq = carries_qdq(index.model)
        self.examples: tuple[dict[str, Any], ...] = ()
        self.values: dict[str, list[np.ndarray]] = {}  # warm-up values of engine inputs
        self.guard_seconds = 0.0
        self.library_fp32 = REGISTRY.for_library(rules_library(config.backend)).fp32_ops(
            config.precision_mode.value)

    def prepare(self, parts: Sequence[Partition]) -> None:
        """Record what the precision decisions need for ``parts``."""
        if self.mode in (PrecisionMode.FP16, PrecisionMode.BF16):
            self._prepare_16_bit(parts)
        elif self.mode is PrecisionMode.INT8 and self.model_qdq and self.config.int8_fp32_layers:
            _LOG.warning("int8_fp32_layers is ignored: the model carries its own Q/DQ nodes, "
                         "which are built as they are")
        elif self.mode is PrecisionMode.INT8 and not self.model_qdq and parts:
            cache = self.config.calibration_cache
            self.calibration = calibration.calibrate(
                self.index, int8.QUANTIZED_OPS, self.config.calibration_data,
                self.config.calibration_method, Path(cache) if cache is not None else None)
            if self.config.int8_fp32_layers:
                self.examples = self.calibration.examples or calibration.examples(
                    self.config.calibration_data, self.index)

    def _prepare_16_bit(self, parts: Sequence[Partition]) -> None:
        index = self.index
        known = {n.name for n in index.nodes} | {n.op_type for n in index.nodes}
        unknown = [k for k in self.config.ops_run_float if k not in known]
        if unknown:
            _LOG.warning("ops_run_float: %s name no node and no op type of this model",
                         ", ".join(repr(k) for k in unknown))
        if self.config.precision_guard:
            tensors = list(dict.fromkeys(
                n for p in parts for node in p.nodes
                for n in (*index.node_inputs[node], *index.nodes[node].output) if n))
            self.stats = record_stats(index, tensors, self.plans)
        tolerance = self.config.accuracy_tolerance
        if isinstance(tolerance, dict):
            unknown = [k for k in tolerance if k not in index.producer]
            if unknown:
                _LOG.warning("accuracy_tolerance: %s name no tensor a node of this model makes",
                             ", ".join(repr(k) for k in unknown))
        if self.config.accuracy_check and parts:
            inputs = []
            for part in parts:
                made = {o for n in part.nodes for o in index.nodes[n].output}
                inputs += [t for n in part.nodes for t in index.node_inputs[n]
                           if t not in made and (t in index.producer or t in index.graph_inputs)]
            self._warm_values(list(dict.fromkeys(inputs)))

    def _warm_values(self, names: Sequence[str]) -> list[dict[str, np.ndarray]] | None:
        """The warm-up values of ``names``, one dict per run (one run of the model records
        those not recorded yet); None when they cannot be had."""
        missing = [n for n in names if n not in self.values]
        feeds = [f for plan in self.plans for f in plan.feeds]
        if missing and feeds:
            try:
                found = tensor_values(self.index, missing, feeds)
            except (InputError, KeyError) as exc:
                _LOG.warning("accuracy guard: cannot record the warm-up values of %s (%s)",
                             ", ".join(missing), exc)
                return None
            self.values.update({n: [run[n] for run in found] for n in missing})
        if not feeds or any(n not in self.values for n in names):
            return None
        return [{n: self.values[n][r] for n in names} for r in range(len(feeds))]

    def apply(self, model: onnx.ModelProto, prefix: str, engine: str = "",
              runs: EngineRuns | None = None) -> Typed:
        """``model`` (a cluster of engine ``engine``) in the engine precision; new names start
        with ``prefix``; ``runs`` builds and runs its lowerings for the accuracy guard (None:
        ONNX Runtime emulates them).

        The result's nodes are in topological order (the converters append their casts and
        Q/DQ nodes at the end; TensorRT's parser reads nodes in order).

        Raises:
            AccuracyError: ``strict_accuracy`` and a lowered output beyond tolerance.
        """
        typed = self._typed(model, prefix, engine or prefix.rstrip("/"), runs)
        return Typed(topologically_sorted(typed.model), typed.info)

    def _typed(self, model: onnx.ModelProto, prefix: str, engine: str,
               runs: EngineRuns | None) -> Typed:
        mode = self.mode
        if mode is not PrecisionMode.FP32:
            model = inlined_model(model)  # lowered, folded and checked weights are read in
        original = model
        if mode is not PrecisionMode.FP32 and not self.model_qdq:
            model = fold_layers(model)
        if mode in (PrecisionMode.FP16, PrecisionMode.BF16):
            keep = guards.fp32_nodes(model.graph.node, mode, self.config.ops_run_float,
                                     self.config.precision_guard, self.stats, self.library_fp32)
            dtype = TensorProto.FLOAT16 if mode is PrecisionMode.FP16 else TensorProto.BFLOAT16

            def lower(chosen: Mapping[str, str]) -> lowp.Lowered:
                return lowp.lower(model, dtype, chosen, prefix, self.config.clamp_fp16_weights)

            checked = self._checked(original, lower, keep, {dtype}, engine, runs)
            lowered = checked.lowered if checked is not None else lower(keep)
            info: dict[str, Any] = {"mode": mode.value, "fp32_nodes": [
                [k.name, k.op_type, k.reason] for k in lowered.kept]}
            if lowered.clamped:
                info["clamped_weights"] = list(lowered.clamped)
            if checked is not None:
                info["accuracy"] = checked.info()
            return Typed(lowered.model, info)
        if mode is PrecisionMode.INT8:
            return self._int8(model, prefix, original, engine, runs)
        return Typed(model, {"mode": mode.value, "fp32_nodes": []})

    def _checked(self, original: onnx.ModelProto,
                 lower: Callable[[Mapping[str, str]], lowp.Lowered], keep: Mapping[str, str],
                 types: set[int], engine: str, runs: EngineRuns | None,
                 rank: Callable[[Sequence[dict[str, np.ndarray]]], accuracy.Ranking] | None = None,
                 ) -> accuracy.Checked | None:
        """The accuracy guard's outcome for one engine (None when it is off or cannot run);
        ``rank`` makes, from the guard's feeds, the ranking its search follows."""
        if not self.config.accuracy_check:
            return None
        weights = {t.name for t in original.graph.initializer}
        feeds = self._warm_values([i.name for i in original.graph.input if i.name not in weights])
        if feeds is None:
            _LOG.warning("engine %s is not checked against FP32: the values of its inputs in "
                         "the warm-up runs are unknown", engine)
            return None
        checked = accuracy.check(original, lower, keep, feeds, types, self.config.tolerance,
                                 engine, self.config.strict_accuracy,
                                 rank(feeds) if rank is not None else None, runs)
        self.guard_seconds += checked.seconds if checked is not None else 0.0
        return checked

    def _sensitive(self, model: onnx.ModelProto, prefix: str) -> dict[str, str]:
        """The ``int8_fp32_layers`` layers of ``model`` most hurt by quantization, with why."""
        count = self.config.int8_fp32_layers
        if not count or self.calibration is None:
            return {}
        feeds = tensor_values(self.index, [i.name for i in model.graph.input], self.examples)
        ranked = sensitivity.rank_layers(model, self.calibration.ranges, feeds, prefix)
        hurting = sum(e.error > 0 for e in ranked[:count])
        if hurting < count:
            _LOG.warning("int8_fp32_layers %d: engine %s keeps %d layer(s) in FP32: it has %d "
                         "quantizable layer(s), %d of which change its outputs when quantized",
                         count, prefix.rstrip("/"), hurting, len(ranked),
                         sum(e.error > 0 for e in ranked))
        return {e.name: f"int8 sensitivity: quantized alone it moves the engine's outputs by "
                        f"{e.error:.2e} (relative L2), rank {k + 1} of {len(ranked)}"
                for k, e in enumerate(ranked[:count]) if e.error > 0}

    def _int8(self, model: onnx.ModelProto, prefix: str, original: onnx.ModelProto,
              engine: str, runs: EngineRuns | None) -> Typed:
        info: dict[str, Any] = {"mode": "int8", "fp32_nodes": []}
        if self.model_qdq:
            info["quantization"] = "Q/DQ nodes of the model"
            info["quantize_nodes"] = sum(n.op_type == "QuantizeLinear" for n in model.graph.node)
            return Typed(model, info)
        if self.calibration is None:
            raise InternalError("INT8: the precision stage was not prepared before use")
        model = lowp.outputs_from_nodes(lowp.constants_as_initializers(model), prefix)
        ranges = self.calibration.ranges
        order = int8.quantizable(model, ranges)

        def lower(chosen: Mapping[str, str]) -> lowp.Lowered:
            quantized = int8.insert_qdq(model, ranges, prefix, chosen)
            return lowp.Lowered(quantized.model, quantized.kept, (),
                                tuple(n for n in order if n not in chosen))

        def rank(feeds: Sequence[dict[str, np.ndarray]]) -> accuracy.Ranking:
            layers: list[sensitivity.LayerError] = []  # ranked once, on the first call

            def ranked(low: Sequence[str]) -> list[str]:
                layers[:] = layers or sensitivity.rank_layers(model, ranges, feeds, prefix)
                return [e.name for e in layers if e.name in low]
            return ranked

        keep = self._sensitive(model, prefix)
        checked = self._checked(original, lower, keep, set(), engine, runs, rank)
        lowered = checked.lowered if checked is not None else lower(keep)
        source = ("calibration cache" if self.calibration.from_cache else
                  f"{self.calibration.samples} calibration samples")
        info["quantization"] = f"{self.calibration.method} ranges from {source}"
        info["quantize_nodes"] = sum(n.op_type == "QuantizeLinear"
                                     for n in lowered.model.graph.node)
        info["fp32_nodes"] = [[k.name, k.op_type, k.reason] for k in lowered.kept]
        if checked is not None:
            info["accuracy"] = checked.info()
        return Typed(lowered.model, info)
