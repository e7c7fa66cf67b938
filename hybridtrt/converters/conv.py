"""Rules for convolution, pooling and normalization ops."""

from __future__ import annotations

from hybridtrt.converters.checks import (
    FLOATS,
    FP32_FP16,
    INT64_ONLY,
    attr_equals,
    attr_in,
    attr_value,
    define,
    input_rank_in,
    no_output,
    value_shaped,
)
from hybridtrt.converters.registry import Check, NodeContext, Verdict, all_of
from hybridtrt.trt.library import RTX

__all__: list[str] = []

# TensorRT convolves and pools over 2 or 3 spatial dims; the parser runs 1D as 2D.
_SPATIAL_RANKS = (3, 4, 5)


def _unit_dilations(ctx: NodeContext) -> Verdict:
    dilations = attr_value(ctx, "dilations", None) or []
    if all(d == 1 for d in dilations):
        return Verdict.yes()
    return Verdict.no(
        f"{ctx.node.op_type} with dilations {list(dilations)} is not supported by TensorRT; "
        "pooling dilations must all be 1"
    )


def _pool_spatial_dims(ctx: NodeContext) -> Verdict:
    kernel = attr_value(ctx, "kernel_shape", None)
    if kernel is None or 1 <= len(kernel) <= 3:
        return Verdict.yes()
    return Verdict.no(
        f"{ctx.node.op_type} over {len(kernel)} spatial dims is not supported by TensorRT "
        "(1D, 2D and 3D only)"
    )


def _symmetric_pads(ctx: NodeContext) -> Verdict:
    pads = attr_value(ctx, "pads", None) or []
    half = len(pads) // 2
    if list(pads[:half]) == list(pads[half:]):
        return Verdict.yes()
    return Verdict.no(
        f"DeformConv pads {list(pads)} differ at the start and end of an axis; TensorRT "
        "pads both ends of each spatial axis alike"
    )


def _extra_outputs_absent(*names: str) -> Check:
    return all_of(*(no_output(i, name) for i, name in enumerate(names, start=1)))


_POOL_NOTES = "1D, 2D or 3D windows; dilations must all be 1."

define(
    "Conv",
    dtypes=FLOATS,
    check=input_rank_in(0, "X", _SPATIAL_RANKS),
    notes="1D, 2D or 3D only (input rank 3 to 5).",
)
define(
    "ConvTranspose",
    dtypes=FLOATS,
    check=input_rank_in(0, "X", _SPATIAL_RANKS),
    notes="1D, 2D or 3D only (input rank 3 to 5).",
    fp32_in=((RTX, "bf16", "TensorRT-RTX cannot build a BF16 deconvolution (its Myelin "
                           "compiler cannot type it; measured with 1.7.1 on PP-OCR det)"),),
)
define(
    "DeformConv",
    dtypes=FP32_FP16,
    check=all_of(input_rank_in(0, "X", (3, 4)), _symmetric_pads),
    notes="1D or 2D only; pads must be equal at both ends of each axis. TensorRT 10.1+.",
    absent_in=((RTX, "its parser finds no DeformConv plugin (measured with 1.7.1)"),),
)
define(
    "AveragePool",
    dtypes=FLOATS,
    check=all_of(_pool_spatial_dims, _unit_dilations),
    notes=_POOL_NOTES,
)
define(
    "MaxPool",
    dtypes=FLOATS,
    output_dtypes=FLOATS | INT64_ONLY,  # so an Indices output gets its own reason
    check=all_of(_pool_spatial_dims, _unit_dilations, no_output(1, "Indices")),
    notes=_POOL_NOTES + " The Indices output is not computed.",
)
define(
    "LpPool",
    dtypes=FLOATS,
    check=all_of(_pool_spatial_dims, _unit_dilations, attr_in("p", (1, 2), 2)),
    notes=_POOL_NOTES + " p must be 1 or 2.",
)
define(("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"), dtypes=FLOATS)
define(
    "BatchNormalization",
    dtypes=FLOATS,
    check=all_of(
        attr_equals("training_mode", 0, 0),
        _extra_outputs_absent("running_mean", "running_var", "saved_mean", "saved_var"),
    ),
    notes="Inference only: training_mode=0 and a single output.",
)
define(
    "LayerNormalization",
    dtypes=FLOATS,
    check=_extra_outputs_absent("Mean", "InvStdDev"),
    notes="Only the first output (Y) is computed.",
)
define(
    (
        "InstanceNormalization",
        "GroupNormalization",
        "LpNormalization",
        "MeanVarianceNormalization",
        "LRN",
    ),
    dtypes=FLOATS,
)
define("RMSNormalization", dtypes=FLOATS, notes="TensorRT 10.15+.")
value_shaped("MaxUnpool", (2,))  # output_shape; no TensorRT rule
