"""Convolution, pooling and normalization rules."""

from __future__ import annotations

from typing import Any

import pytest
from onnx import TensorProto as T
from onnx.helper import make_node

from hybridtrt.converters.registry import Verdict
from hybridtrt.converters.testing import verdict_of


@pytest.mark.parametrize(
    ("op_type", "shape", "reason"),
    [
        ("Conv", (1, 3, 8), ""),
        ("Conv", (1, 3, 8, 8, 8), ""),
        ("Conv", (1, 3, 4, 4, 4, 4), "input 0 'X' of Conv has rank 6; TensorRT takes rank 3 to 5"),
        ("ConvTranspose", (3, 8), "input 0 'X' of ConvTranspose has rank 2; TensorRT takes "
                                  "rank 3 to 5"),
    ],
)  # fmt: skip
def test_convolution_spatial_dims(op_type: str, shape: tuple[Any, ...], reason: str) -> None:
    verdict = verdict_of(make_node(op_type, ["x", "w"], ["y"]), shapes={"x": shape})
    assert verdict == Verdict(not reason, reason)


def test_conv_rejects_integer_data() -> None:
    verdict = verdict_of(make_node("Conv", ["x", "w"], ["y"]), dtype=T.INT32)
    assert verdict == Verdict.no(
        "input 0 ('x') has dtype int32; Conv takes bfloat16, float16, float32"
    )


@pytest.mark.parametrize(
    ("op_type", "attrs", "outputs", "reason"),
    [
        ("MaxPool", {"kernel_shape": [3]}, ["y"], ""),
        ("AveragePool", {"kernel_shape": [3, 3], "dilations": [1, 1]}, ["y"], ""),
        ("MaxPool", {"kernel_shape": [2, 2, 2, 2]}, ["y"],
         "MaxPool over 4 spatial dims is not supported by TensorRT (1D, 2D and 3D only)"),
        ("AveragePool", {"kernel_shape": [3, 3], "dilations": [2, 2]}, ["y"],
         "AveragePool with dilations [2, 2] is not supported by TensorRT; pooling dilations "
         "must all be 1"),
        ("MaxPool", {"kernel_shape": [3, 3]}, ["y", "idx"],
         "output 1 'Indices' of MaxPool is not computed by TensorRT; only nodes that leave it "
         "out can run there"),
        ("LpPool", {"kernel_shape": [3, 3], "p": 3}, ["y"],
         "attribute p=3 of LpPool is not supported by TensorRT (it takes 1, 2)"),
    ],
)  # fmt: skip
def test_pooling_restrictions(
    op_type: str, attrs: dict[str, Any], outputs: list[str], reason: str
) -> None:
    verdict = verdict_of(make_node(op_type, ["x"], outputs, **attrs), dtypes={"idx": T.INT64})
    assert verdict == Verdict(not reason, reason)


@pytest.mark.parametrize(
    ("attrs", "outputs", "reason"),
    [
        ({}, ["y"], ""),
        ({"training_mode": 1}, ["y"],
         "attribute training_mode of BatchNormalization must be 0 for TensorRT, not 1"),
        ({}, ["y", "mean", "var"],
         "output 1 'running_mean' of BatchNormalization is not computed by TensorRT; only "
         "nodes that leave it out can run there"),
    ],
)  # fmt: skip
def test_batch_normalization_is_inference_only(
    attrs: dict[str, Any], outputs: list[str], reason: str
) -> None:
    node = make_node("BatchNormalization", ["x", "s", "b", "m", "v"], outputs, **attrs)
    assert verdict_of(node, opset=15) == Verdict(not reason, reason)


def test_layer_normalization_gives_only_y() -> None:
    node = make_node("LayerNormalization", ["x", "s"], ["y", "", "inv"])
    assert verdict_of(node) == Verdict.no(
        "output 2 'InvStdDev' of LayerNormalization is not computed by TensorRT; only nodes "
        "that leave it out can run there"
    )
    assert verdict_of(make_node("LayerNormalization", ["x", "s"], ["y"])) == Verdict.yes()


@pytest.mark.parametrize(
    ("shape", "pads", "reason"),
    [
        ((1, 3, 8, 8), [1, 2, 1, 2], ""),
        ((1, 3, 8, 8), [1, 1, 0, 0], "DeformConv pads [1, 1, 0, 0] differ at the start and end "
                                     "of an axis; TensorRT pads both ends of each spatial axis "
                                     "alike"),
        ((1, 3, 4, 4, 4), [0] * 6, "input 0 'X' of DeformConv has rank 5; TensorRT takes rank "
                                   "3 or 4"),
    ],
)  # fmt: skip
def test_deform_conv(shape: tuple[Any, ...], pads: list[str], reason: str) -> None:
    node = make_node("DeformConv", ["x", "w", "off"], ["y"], pads=pads)
    assert verdict_of(node, shapes={"x": shape}) == Verdict(not reason, reason)


@pytest.mark.parametrize(
    ("op_type", "opset", "reason"),
    [
        ("GroupNormalization", 17, "GroupNormalization at opset 17 is outside the supported "
                                   "opsets 18"),
        ("GroupNormalization", 21, ""),
        ("RMSNormalization", 23, ""),
        ("LayerNormalization", 16, "LayerNormalization at opset 16 is outside the supported "
                                   "opsets 17"),
    ],
)  # fmt: skip
def test_normalizations_start_at_their_onnx_opset(op_type: str, opset: int, reason: str) -> None:
    verdict = verdict_of(make_node(op_type, ["x", "s", "b"], ["y"]), opset=opset)
    assert verdict == Verdict(not reason, reason)
