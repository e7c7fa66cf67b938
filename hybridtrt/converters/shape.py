"""Rules for ops that move, reshape, index, create or convert tensors without arithmetic."""

from __future__ import annotations

from onnx import TensorProto

from hybridtrt.converters.checks import (
    BOOL_ONLY,
    CAST_TYPES,
    CONSTANT_TYPES,
    INT64_ONLY,
    INTS,
    NUMERIC,
    NUMERIC_BOOL,
    attr_value,
    constant_input,
    define,
    input_dtype,
    input_rank_in,
    max_input_rank,
    no_attr,
    static_dims,
    value_shaped,
)
from hybridtrt.converters.registry import NodeContext, Verdict, all_of, dtype_name
from hybridtrt.trt.library import RTX

__all__: list[str] = []

# TensorRT tensors have at most 8 dims.
_MAX_RANK = 8


def _cast_target(ctx: NodeContext) -> Verdict:
    target = attr_value(ctx, "to", None)
    if target is None or target in CAST_TYPES:
        return Verdict.yes()
    return Verdict.no(f"Cast to {dtype_name(target)} is not supported by TensorRT")


def _distinct_axes(ctx: NodeContext) -> Verdict:
    batch, time = attr_value(ctx, "batch_axis", 1), attr_value(ctx, "time_axis", 0)
    if batch != time:
        return Verdict.yes()
    return Verdict.no(
        f"ReverseSequence needs different batch_axis and time_axis (both are {batch})"
    )


define(("Identity", "Flatten", "Concat"), dtypes=NUMERIC_BOOL)
define("Transpose", dtypes=NUMERIC_BOOL, check=max_input_rank(_MAX_RANK, 0, "data"))
define(("Reshape", "Expand", "Tile", "Split"), dtypes=NUMERIC_BOOL, shape_inputs=(1,))
define("Slice", dtypes=NUMERIC_BOOL, shape_inputs=(1, 2, 3, 4))
define(
    ("Squeeze", "Unsqueeze"),
    dtypes=NUMERIC_BOOL,
    typed_inputs=(0,),
    shape_inputs=(1,),
    check=constant_input(1, "axes"),
    notes="An axes input must be a constant.",
)
define(("Shape", "Size"), dtypes=NUMERIC_BOOL, output_dtypes=INT64_ONLY)
define(
    ("Gather", "GatherElements", "GatherND"),
    dtypes=NUMERIC_BOOL,
    typed_inputs=(0,),
    check=input_dtype(1, "indices", INTS),
)
define(
    "Pad",
    dtypes=NUMERIC,
    shape_inputs=(1, 3),
    notes="All four modes (constant, reflect, edge, wrap).",
)
define("ConstantOfShape", dtypes=CONSTANT_TYPES, shape_inputs=(0,))
define("Range", dtypes=INTS | {TensorProto.FLOAT}, shape_inputs=(0, 1, 2),
       notes="int32, int64 or float32 only.")
define(
    "Constant",
    dtypes=CONSTANT_TYPES,
    check=all_of(no_attr("sparse_value"), no_attr("value_string"), no_attr("value_strings")),
    notes="No sparse or string values.",
)
define("Cast", dtypes=CAST_TYPES, check=_cast_target, notes="uint8 only at engine inputs/outputs.")
define("CastLike", dtypes=CAST_TYPES, notes="uint8 only at engine inputs/outputs.")
define(
    "Where",
    dtypes=NUMERIC_BOOL,
    typed_inputs=(1, 2),
    check=input_dtype(0, "condition", BOOL_ONLY),
)
# The operator list names fp32/fp16 only; the 10.x importer explicitly admits these too.
define("NonZero", dtypes=NUMERIC_BOOL, output_dtypes=INT64_ONLY,
       absent_in=((RTX, "its parser has no NonZero plugin (measured with 1.7.1)"),))
# Ordinary tensors whose values decide output shapes, and such inputs of ops without a rule.
value_shaped(("NonZero", "Unique"), (0,))
value_shaped(("CenterCropPad", "Compress", "SplitToSequence"), (1,))
define(
    "EyeLike",
    dtypes=NUMERIC_BOOL,
    dynamic_shapes=False,
    check=all_of(input_rank_in(0, "input", (2,)), static_dims(0, "input")),
    notes="2D input only.",
)
define(
    "Trilu",
    dtypes=NUMERIC_BOOL,
    typed_inputs=(0,),
    check=input_rank_in(0, "input", range(2, _MAX_RANK + 1)),
)
define(
    ("DepthToSpace", "SpaceToDepth"),
    dtypes=NUMERIC,
    check=input_rank_in(0, "input", (4,)),
    notes="4D (NCHW) input only.",
)
define(
    "ReverseSequence",
    dtypes=NUMERIC_BOOL,
    typed_inputs=(0,),
    check=_distinct_axes,
)
