"""INT8 clusters: TensorRT-style Q/DQ inserted with ONNX Runtime's QDQ quantizer.

TensorRT's explicit quantization wants symmetric int8 (zero point 0), per-channel weights, a
dedicated Q/DQ pair per consumer, float biases, and Q/DQ on the inputs of the weighted layers
(not their outputs); ``onnxruntime.quantization``'s QDQQuantizer writes exactly that when asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import onnx

from hybridtrt.compiler.precision.lowp import KeptNode, constants_as_initializers, prefix_new_names

__all__ = ["QUANTIZED_OPS", "Quantized", "insert_qdq", "per_channel_opset", "quantizable"]

# The layers TensorRT runs in int8 from Q/DQ on their inputs; the rest stays FP32.
QUANTIZED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
per_channel_opset = 13  # DequantizeLinear's axis (per-channel scales) arrived in opset 13


@dataclasses.dataclass(frozen=True)
class Quantized:
    """A cluster model with Q/DQ: the model, its QuantizeLinear count, the nodes left FP32."""

    model: onnx.ModelProto
    quantize_nodes: int
    kept: tuple[KeptNode, ...]


def insert_qdq(
    model: onnx.ModelProto, ranges: Mapping[str, tuple[float, float]], prefix: str,
    keep: Mapping[str, str] | None = None,
) -> Quantized:
    """``model`` with Q/DQ on the inputs of its Conv/ConvTranspose/MatMul/Gemm nodes.

    Args:
        model: A cluster model (FP32).
        ranges: Calibrated (low, high) per activation tensor.
        prefix: Prefix of every name the quantizer adds.
        keep: More nodes to leave in FP32, by name, with the reason.

    Products of two activations (attention) and nodes whose inputs were not calibrated stay
    in FP32 (listed in the result).
    """
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer

    inferred = onnx.shape_inference.infer_shapes(constants_as_initializers(model))
    used = {n for node in model.graph.node for n in (*node.input, *node.output)}
    data = TensorsData(CalibrationMethod.MinMax, {
        name: TensorData(lowest=np.float32(lo), highest=np.float32(hi))
        for name, (lo, hi) in ranges.items() if name in used
    })
    kept = {**_kept_fp32(inferred, ranges), **(keep or {})}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    quantizer = QDQQuantizer(
        inferred, opset >= per_channel_opset, False, QuantType.QInt8, QuantType.QInt8, data,
        None, sorted(kept), list(QUANTIZED_OPS), {
            "ActivationSymmetric": True, "WeightSymmetric": True, "DedicatedQDQPair": True,
            "QuantizeBias": False, "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS),
            "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},
        },
    )
    quantizer.quantize_model()
    result: onnx.ModelProto = quantizer.model.model
    prefix_new_names(result.graph, model.graph, prefix)
    count = sum(n.op_type == "QuantizeLinear" for n in result.graph.node)
    return Quantized(result, count, tuple(
        KeptNode(n.name, n.op_type, kept[n.name]) for n in inferred.graph.node if n.name in kept))


def quantizable(model: onnx.ModelProto, ranges: Mapping[str, tuple[float, float]]) -> list[str]:
    """Names of the nodes ``insert_qdq`` quantizes, in graph order."""
    inferred = onnx.shape_inference.infer_shapes(constants_as_initializers(model))
    kept = _kept_fp32(inferred, ranges)
    return [n.name for n in inferred.graph.node if n.op_type in QUANTIZED_OPS and n.name not in kept]


def _kept_fp32(model: onnx.ModelProto, ranges: Mapping[str, tuple[float, float]]) -> dict[str, str]:
    """Quantizable nodes left in FP32, with the reason."""
    weights = {t.name for t in model.graph.initializer}
    kept = {}
    for node in model.graph.node:
        if node.op_type not in QUANTIZED_OPS:
            continue
        if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1 and node.input[1] not in weights:
            kept[node.name] = "product of two activations (attention): too lossy in int8"
        elif any(i and i not in weights and i not in ranges for i in node.input):
            kept[node.name] = "an input has no calibrated range (made by layer folding)"
    return kept

