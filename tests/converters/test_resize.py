"""Resize, Upsample and GridSample rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx.helper import make_node

from hybridtrt.converters.registry import Verdict
from hybridtrt.converters.testing import verdict_of

_SCALES = {"scales": np.array([1.0, 1.0, 2.0, 2.0], np.float32)}


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, ""),
        ({"mode": "nearest", "nearest_mode": "ceil"}, ""),
        ({"mode": "cubic"},
         "attribute mode='cubic' of Resize is not supported by TensorRT (it takes 'nearest', "
         "'linear')"),
        ({"coordinate_transformation_mode": "tf_crop_and_resize"},
         "attribute coordinate_transformation_mode='tf_crop_and_resize' of Resize is not "
         "supported by TensorRT (it takes 'half_pixel', 'pytorch_half_pixel', "
         "'tf_half_pixel_for_nn', 'asymmetric', 'align_corners')"),
        ({"antialias": 1}, "attribute antialias of Resize must be 0 for TensorRT, not 1"),
        ({"keep_aspect_ratio_policy": "not_larger"},
         "attribute keep_aspect_ratio_policy of Resize must be 'stretch' for TensorRT, not "
         "'not_larger'"),
        ({"coordinate_transformation_mode": "tf_half_pixel_for_nn", "nearest_mode": "floor"},
         "Resize with tf_half_pixel_for_nn takes only nearest_mode 'round_prefer_floor' in "
         "TensorRT, not 'floor'"),
    ],
)  # fmt: skip
def test_resize_attributes(attrs: dict[str, Any], reason: str) -> None:
    node = make_node("Resize", ["x", "", "scales"], ["y"], **attrs)
    assert verdict_of(node, constants=_SCALES, opset=19) == Verdict(not reason, reason)


@pytest.mark.parametrize(
    ("axes", "constants", "reason"),
    [
        ([2, 3], _SCALES, ""),
        ([0, 1, 2, 3], {}, ""),
        ([-4, -3, -2, -1], {}, ""),
        ([2, 3], {}, "Resize with computed scales takes axes only as every axis in order "
                     "(0..3); got [2, 3]"),
    ],
)  # fmt: skip
def test_resize_axes_with_computed_scales(
    axes: list[str], constants: dict[str, Any], reason: str
) -> None:
    node = make_node("Resize", ["x", "", "scales"], ["y"], axes=axes)
    verdict = verdict_of(node, shapes={"x": (1, 3, 8, 8)}, constants=constants, opset=19)
    assert verdict == Verdict(not reason, reason)


@pytest.mark.parametrize(
    ("op_type", "inputs", "opset", "scales", "reason"),
    [
        ("Resize", ["x", "", "s"], 19, [1, 1, 2, 2], ""),
        ("Resize", ["x", "s"], 10, [1, 2, 2, 2, 2], "linear Resize with scales [1.0, 2.0, 2.0, "
                                                    "2.0, 2.0] resizes a dim outside the "
                                                    "innermost 3, which TensorRT cannot "
                                                    "interpolate"),
        ("Upsample", ["x", "s"], 9, [2, 1, 1, 2], "linear Upsample with scales [2.0, 1.0, 1.0, "
                                                  "2.0] resizes a dim outside the innermost 3, "
                                                  "which TensorRT cannot interpolate"),
    ],
)  # fmt: skip
def test_linear_resizes_only_three_inner_dims(
    op_type: str, inputs: list[str], opset: int, scales: list[str], reason: str
) -> None:
    node = make_node(op_type, inputs, ["y"], mode="linear")
    constants = {"s": np.array(scales, np.float32)}
    assert verdict_of(node, constants=constants, opset=opset) == Verdict(not reason, reason)


def test_upsample_modes() -> None:
    node = make_node("Upsample", ["x", "s"], ["y"], mode="cubic")
    assert verdict_of(node, opset=9) == Verdict.no(
        "attribute mode='cubic' of Upsample is not supported by TensorRT (it takes 'nearest', "
        "'linear', 'bilinear')"
    )


def test_grid_sample_is_4d_fp32_fp16() -> None:
    node = make_node("GridSample", ["x", "grid"], ["y"], mode="bilinear")
    shapes = {"x": (1, 3, 8, 8), "grid": (1, 4, 4, 2)}
    assert verdict_of(node, shapes=shapes, opset=16) == Verdict.yes()
    assert verdict_of(node, shapes={"x": (1, 3, 4, 8, 8)}, opset=16) == Verdict.no(
        "input 0 'X' of GridSample has rank 5; TensorRT takes rank 4"
    )
    assert verdict_of(node, dtype=T.BFLOAT16, opset=16).reason == (
        "input 0 ('x') has dtype bfloat16; GridSample takes float16, float32"
    )
