"""INT8 sensitivity analysis: which layers hurt an engine's outputs most when quantized.

Each quantizable layer is quantized alone (every other layer FP32) and the engine subgraph is
run in ONNX Runtime on a few calibration samples; the relative L2 error of its outputs against
FP32 ranks the layers. The worst ones can then stay FP32 (``int8_fp32_layers``), the
layer-wise mixed precision of TensorRT Model Optimizer and PaddleSlim, done on the engine graph.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from hybridtrt.compiler.precision.int8 import insert_qdq, quantizable
from hybridtrt.ort_support import runnable_bytes
from hybridtrt.progress import progress

__all__ = ["LayerError", "rank_layers"]


@dataclasses.dataclass(frozen=True)
class LayerError:
    """The relative L2 error of the engine's outputs with only ``name`` quantized."""

    name: str
    error: float


def rank_layers(model: onnx.ModelProto, ranges: Mapping[str, tuple[float, float]],
                feeds: Sequence[Mapping[str, np.ndarray]], prefix: str) -> list[LayerError]:
    """Quantizable layers of ``model`` (an FP32 engine subgraph), most sensitive first.

    Args:
        model: The engine's FP32 subgraph as a model.
        ranges: Calibrated activation ranges.
        feeds: Values of the subgraph's inputs (a few calibration samples).
        prefix: Prefix of the names the quantizer adds.
    """
    names = quantizable(model, ranges)
    reference = _run(model, feeds)
    found = []
    for name in progress(names, desc="int8 sensitivity", unit="layer"):
        alone = insert_qdq(model, ranges, prefix, {n: "" for n in names if n != name})
        found.append(LayerError(name, _relative_error(_run(alone.model, feeds), reference)))
    return sorted(found, key=lambda e: (-e.error, names.index(e.name)))


def _run(model: onnx.ModelProto, feeds: Sequence[Mapping[str, np.ndarray]]) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(runnable_bytes(model), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    return [[np.asarray(v) for v in session.run(None, {k: v for k, v in f.items() if k in wanted})]
            for f in feeds]


def _relative_error(got: Sequence[Sequence[np.ndarray]], want: Sequence[Sequence[np.ndarray]]) -> float:
    diff = total = 0.0
    for outputs, references in zip(got, want):
        for a, b in zip(outputs, references):
            if b.dtype.kind == "f":
                diff += float(np.sum((a.astype(np.float64) - b) ** 2))
                total += float(np.sum(b.astype(np.float64) ** 2))
    return float(np.sqrt(diff / total)) if total else float(np.sqrt(diff))
