"""Rules for resampling ops: Resize, Upsample and GridSample."""

from __future__ import annotations

from hybridtrt.converters.checks import (
    FLOATS,
    FP32_FP16,
    attr_equals,
    attr_in,
    attr_value,
    define,
    input_is_constant,
    input_rank_in,
    input_value,
)
from hybridtrt.converters.registry import Check, NodeContext, Verdict, all_of

__all__: list[str] = []

_COORDINATE_MODES = (
    "half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners",
)  # fmt: skip
_NEAREST_MODES = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")
# Linear interpolation in TensorRT scales at most the 3 innermost dims.
_LINEAR_DIMS = 3


def _linear_scales_innermost(scales_index: int) -> Check:
    def check(ctx: NodeContext) -> Verdict:
        scales = input_value(ctx, scales_index)
        if attr_value(ctx, "mode", "nearest") not in ("linear", "bilinear") or scales is None:
            return Verdict.yes()
        flat = scales.reshape(-1).tolist()
        if all(s == 1 for s in flat[:-_LINEAR_DIMS]):
            return Verdict.yes()
        return Verdict.no(
            f"linear {ctx.node.op_type} with scales {flat} resizes a dim outside the innermost "
            f"{_LINEAR_DIMS}, which TensorRT cannot interpolate"
        )

    return check


def _tf_nearest_rounding(ctx: NodeContext) -> Verdict:
    coordinates = attr_value(ctx, "coordinate_transformation_mode", "half_pixel")
    rounding = attr_value(ctx, "nearest_mode", "round_prefer_floor")
    if coordinates != "tf_half_pixel_for_nn" or rounding == "round_prefer_floor":
        return Verdict.yes()
    return Verdict.no(
        f"Resize with tf_half_pixel_for_nn takes only nearest_mode 'round_prefer_floor' in "
        f"TensorRT, not {rounding!r}"
    )


def _iota_axes_for_dynamic_scales(ctx: NodeContext) -> Verdict:
    axes = attr_value(ctx, "axes", None)
    scales_given = len(ctx.node.input) > 2 and bool(ctx.node.input[2])
    if axes is None or not scales_given or input_is_constant(ctx, 2):
        return Verdict.yes()
    rank = ctx.input(0).rank or len(axes)
    normalized = [a + rank if a < 0 else a for a in axes]
    if normalized == list(range(rank)):
        return Verdict.yes()
    return Verdict.no(
        f"Resize with computed scales takes axes only as every axis in order "
        f"(0..{rank - 1}); got {list(axes)}"
    )


def _resize_check(scales_index: int) -> Check:
    return all_of(
        attr_in("mode", ("nearest", "linear"), "nearest"),
        attr_in("coordinate_transformation_mode", _COORDINATE_MODES, "half_pixel"),
        attr_in("nearest_mode", _NEAREST_MODES, "round_prefer_floor"),
        attr_equals("keep_aspect_ratio_policy", "stretch", "stretch"),
        attr_equals("antialias", 0, 0),
        _tf_nearest_rounding,
        _iota_axes_for_dynamic_scales,
        _linear_scales_innermost(scales_index),
    )


_RESIZE_NOTES = (
    "Modes nearest and linear; coordinate modes half_pixel, pytorch_half_pixel, "
    "tf_half_pixel_for_nn (with round_prefer_floor), asymmetric, align_corners; "
    "keep_aspect_ratio_policy stretch; no antialias; computed scales need axes to be all dims "
    "in order; linear resizes only the 3 innermost dims."
)

define(
    "Resize",
    max_opset=10,
    dtypes=FLOATS,
    typed_inputs=(0,),
    shape_inputs=(1,),
    check=_resize_check(1),
    notes=_RESIZE_NOTES,
)
define(
    "Resize",
    min_opset=11,
    dtypes=FLOATS,
    typed_inputs=(0,),
    shape_inputs=(2, 3),
    check=_resize_check(2),
    notes=_RESIZE_NOTES,
)
define(
    "Upsample",
    dtypes=FLOATS,
    typed_inputs=(0,),
    shape_inputs=(1,),
    check=all_of(
        attr_in("mode", ("nearest", "linear", "bilinear"), "nearest"),
        _linear_scales_innermost(1),
    ),
    notes="Linear upsampling resizes only the 3 innermost dims.",
)
define(
    "GridSample",
    dtypes=FP32_FP16,
    typed_inputs=(0, 1),
    check=all_of(input_rank_in(0, "X", (4,)), input_rank_in(1, "grid", (4,))),
    notes="4D input only.",
)
