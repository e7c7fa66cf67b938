"""Rules for the remaining ops: TopK, NMS, scatter, CumSum, OneHot, random, signal, RoiAlign."""

from __future__ import annotations

from onnx import TensorProto

from hybridtrt.converters.checks import (
    FLOATS,
    FP32_FP16,
    INT64_ONLY,
    INTS,
    NUMERIC,
    NUMERIC_BOOL,
    attr_equals,
    attr_value,
    constant_input,
    define,
    input_dtype,
    input_value,
    value_shaped,
)
from hybridtrt.converters.registry import NodeContext, Verdict, all_of
from hybridtrt.trt.library import RTX

__all__: list[str] = []

# The largest K that TensorRT's TopK layer takes.
_MAX_TOPK = 3840


def _topk_k_limit(ctx: NodeContext) -> Verdict:
    value = input_value(ctx, 1)
    k = attr_value(ctx, "k", None) if value is None or value.size != 1 else int(value.item())
    if k is None or k <= _MAX_TOPK:
        return Verdict.yes()
    return Verdict.no(f"TopK with K={k} is over TensorRT's limit of {_MAX_TOPK}")


def _real_signal(ctx: NodeContext) -> Verdict:
    shape = ctx.input(0).shape
    if not shape or shape[-1] != 2:
        return Verdict.yes()
    return Verdict.no("STFT of a complex signal (last dim 2) is not supported by TensorRT")


define(
    "TopK",
    dtypes=NUMERIC,
    typed_inputs=(0,),
    shape_inputs=(1,),
    check=all_of(attr_equals("sorted", 1, 1), _topk_k_limit),
    notes=f"sorted must be 1; K at most {_MAX_TOPK}.",
)
define(
    "NonMaxSuppression",
    dtypes=FP32_FP16,
    typed_inputs=(0, 1),
    shape_inputs=(2,),
    output_dtypes=INT64_ONLY,
    absent_in=((RTX, "its builder has no runner for it (measured with 1.7.1)"),),
)
define(
    "CumSum",
    dtypes=FLOATS,
    typed_inputs=(0,),
    check=constant_input(1, "axis"),
    notes="The axis input must be a constant.",
)
define(
    "OneHot",
    dtypes=NUMERIC_BOOL,
    typed_inputs=(2,),
    shape_inputs=(1,),
    check=all_of(constant_input(1, "depth"), input_dtype(0, "indices", INTS)),
    notes="depth must be a constant; indices must be int32 or int64.",
)
define(
    "ScatterND",
    dtypes=NUMERIC,
    typed_inputs=(0, 2),
    check=attr_equals("reduction", "none", "none"),
    notes="reduction must be 'none'.",
)
define(
    ("ScatterElements", "Scatter"),
    dtypes=NUMERIC,
    typed_inputs=(0, 2),
    checks_in=((RTX, attr_equals("reduction", "none", "none")),),
    notes="TensorRT-RTX: reduction must be 'none' (its parser refuses the others).",
)
define(
    ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike"),
    dtypes=FLOATS,
    typed_inputs=(),
    notes="seed is ignored: values differ from other runtimes.",
)
define(
    "RoiAlign",
    dtypes=FP32_FP16,
    typed_inputs=(0, 1),
    notes="Runs as a TensorRT plugin.",
    absent_in=((RTX, "its parser finds no ROIAlign plugin (measured with 1.7.1)"),),
)
define(
    ("BlackmanWindow", "HammingWindow", "HannWindow"),
    dtypes=FP32_FP16,
    shape_inputs=(0,),
    notes="TensorRT 10.4+.",
)
define(
    "STFT",
    dtypes=frozenset({TensorProto.FLOAT}),
    typed_inputs=(0, 2),
    shape_inputs=(1, 3),
    check=all_of(constant_input(1, "frame_step"), constant_input(2, "window"), _real_signal),
    notes="frame_step and window must be constants; real signals only. TensorRT 10.5+.",
)
# Inputs whose values decide output shapes, beyond the rules' shape tensors: what NMS keeps
# depends on every input; the other ops have no TensorRT rule.
value_shaped("NonMaxSuppression", (0, 1, 3, 4))
value_shaped("AffineGrid", (1,))
value_shaped(("DFT", "Col2Im"), (1, 2))
value_shaped("MelWeightMatrix", (0, 1))
value_shaped(("StringSplit", "StringNormalizer", "ImageDecoder"), (0,))
