"""Rules for data-movement, indexing, creation and conversion ops, and which inputs are shapes."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx.helper import make_node, make_tensor

import hybridtrt.converters as converters
from hybridtrt.converters.registry import Verdict
from hybridtrt.converters.testing import verdict_of

_CONSTANT_AXES = "input 1 'axes' of {op} must be a constant (initializer or Constant) for TensorRT"


@pytest.mark.parametrize("op_type", ["Squeeze", "Unsqueeze"])
@pytest.mark.parametrize(
    ("opset", "inputs", "constants", "reason"),
    [
        (13, ["x", "axes"], {"axes": np.array([0])}, ""),
        (13, ["x", "axes"], {}, _CONSTANT_AXES),
        (13, ["x"], {}, ""),
        (11, ["x"], {}, ""),
    ],
)
def test_squeeze_axes_must_be_constant(
    op_type: str, opset: int, inputs: list[str], constants: dict[str, Any], reason: str
) -> None:
    attrs: dict[str, Any] = {"axes": [0]} if opset < 13 else {}
    node = make_node(op_type, inputs, ["y"], **attrs)
    verdict = verdict_of(node, dtypes={"axes": T.INT64}, constants=constants, opset=opset)
    expected = reason.format(op=op_type)
    assert verdict == Verdict(not expected, expected)


@pytest.mark.parametrize(
    ("op_type", "opset", "shape_inputs"),
    [
        ("Reshape", 21, (1,)), ("Expand", 21, (1,)), ("Tile", 21, (1,)), ("Split", 21, (1,)),
        ("Slice", 21, (1, 2, 3, 4)), ("Pad", 21, (1, 3)), ("ConstantOfShape", 21, (0,)),
        ("Range", 21, (0, 1, 2)), ("Resize", 10, (1,)), ("Resize", 19, (2, 3)),
        ("Upsample", 9, (1,)), ("TopK", 11, (1,)), ("NonMaxSuppression", 11, (2,)),
        ("HannWindow", 17, (0,)), ("STFT", 17, (1, 3)), ("ReduceL2", 18, (1,)),
        ("ReduceSum", 13, (1,)), ("Squeeze", 13, (1,)), ("Unsqueeze", 13, (1,)),
        ("OneHot", 11, (1,)),
    ],
)  # fmt: skip
def test_shape_inputs_are_declared(op_type: str, opset: int, shape_inputs: tuple[Any, ...]) -> None:
    found = converters.REGISTRY.find(op_type, "", opset)
    assert found is not None and found.shape_inputs == shape_inputs


@pytest.mark.parametrize(
    ("op_type", "opset", "inputs"),
    [
        ("Reshape", 21, (1,)), ("ReduceLogSum", 18, (1,)), ("BlackmanWindow", 17, (0,)),
        ("AffineGrid", 20, (1,)), ("CenterCropPad", 18, (1,)), ("NonZero", 13, (0,)),
        ("NonMaxSuppression", 11, (0, 1, 2, 3, 4)), ("If", 21, (0,)), ("Loop", 21, (0, 1)),
        ("Relu", 14, ()), ("Unique", 11, (0,)), ("Compress", 11, (1,)),
    ],
)  # fmt: skip
def test_value_shaped_inputs_cover_rules_and_ops_without_one(
    op_type: str, opset: int, inputs: tuple[int, ...]
) -> None:
    """The partitioner asks the registry which inputs' values set shapes, whether or not
    TensorRT has a rule for the op (ONNX Runtime nodes pass unknown shapes on too)."""
    assert converters.REGISTRY.value_shaped_inputs(op_type, "", opset) == inputs


def test_shape_inputs_skip_the_dtype_check() -> None:
    node = make_node("Reshape", ["x", "shape"], ["y"])
    assert verdict_of(node, dtype=T.BOOL, dtypes={"shape": T.INT64}) == Verdict.yes()


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        (T.FLOAT16, ""),
        (T.UINT8, ""),
        (T.DOUBLE, "Cast to float64 is not supported by TensorRT"),
        (T.FLOAT8E4M3FN, "Cast to float8_e4m3fn is not supported by TensorRT"),
    ],
)
def test_cast_targets(to: int, reason: str) -> None:
    verdict = verdict_of(make_node("Cast", ["x"], ["y"], to=to), dtypes={"y": None})
    assert verdict == Verdict(not reason, reason)


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"value": make_tensor("v", T.FLOAT, [1], [1.0])}, ""),
        ({"value_float": 2.0}, ""),
        ({"value_string": "hello"},
         "attribute 'value_string' of Constant is not supported by TensorRT"),
        ({"value_strings": ["a", "b"]},
         "attribute 'value_strings' of Constant is not supported by TensorRT"),
    ],
)  # fmt: skip
def test_constant_values(attrs: dict[str, Any], reason: str) -> None:
    verdict = verdict_of(make_node("Constant", [], ["c"], **attrs), dtype=None)
    assert verdict == Verdict(not reason, reason)


@pytest.mark.parametrize("op_type", ["Gather", "GatherElements", "GatherND"])
def test_gather_indices_must_be_integers(op_type: str) -> None:
    node = make_node(op_type, ["data", "idx"], ["y"])
    assert verdict_of(node, dtype=T.BOOL, dtypes={"idx": T.INT32}) == Verdict.yes()
    assert verdict_of(node, dtypes={"idx": T.FLOAT}) == Verdict.no(
        f"input 1 'indices' of {op_type} has dtype float32; TensorRT takes int32, int64"
    )


def test_where_condition_must_be_bool() -> None:
    node = make_node("Where", ["c", "a", "b"], ["y"])
    assert verdict_of(node, dtype=T.INT64, dtypes={"c": T.BOOL}) == Verdict.yes()
    assert verdict_of(node, dtype=T.INT64) == Verdict.no(
        "input 0 'condition' of Where has dtype int64; TensorRT takes bool"
    )


def test_shape_and_size_give_int64() -> None:
    for op_type in ("Shape", "Size"):
        node = make_node(op_type, ["x"], ["s"])
        assert verdict_of(node, dtypes={"s": T.INT64}) == Verdict.yes()
        assert verdict_of(node, dtypes={"s": T.INT32}).reason == (
            f"output 0 ('s') has dtype int32; {op_type} gives int64"
        )


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ((3, 4), ""),
        (("n", 4), "input 0 'input' of EyeLike must have a fixed shape for TensorRT (its shape "
                   "is ['n', 4])"),
        (None, "input 0 'input' of EyeLike must have a fixed shape for TensorRT (its shape is "
               "unknown)"),
        ((2, 3, 4), "input 0 'input' of EyeLike has rank 3; TensorRT takes rank 2"),
    ],
)  # fmt: skip
def test_eye_like_needs_a_static_2d_input(shape: tuple[Any, ...] | None, reason: str) -> None:
    assert verdict_of(make_node("EyeLike", ["x"], ["y"]), shapes={"x": shape}) == Verdict(
        not reason, reason
    )
    found = converters.REGISTRY.find("EyeLike", "", 21)
    assert found is not None and found.dynamic_shapes is False


@pytest.mark.parametrize(
    ("node", "shape", "reason"),
    [
        (make_node("Transpose", ["x"], ["y"]), (1,) * 9,
         "input 0 'data' of Transpose has rank 9; TensorRT takes at most 8"),
        (make_node("DepthToSpace", ["x"], ["y"], blocksize=2), (1, 4, 8),
         "input 0 'input' of DepthToSpace has rank 3; TensorRT takes rank 4"),
        (make_node("Trilu", ["x"], ["y"]), (5,),
         "input 0 'input' of Trilu has rank 1; TensorRT takes rank 2 to 8"),
        (make_node("Trilu", ["x"], ["y"]), (5, 5), ""),
    ],
)  # fmt: skip
def test_rank_limits(node: onnx.NodeProto, shape: tuple[Any, ...], reason: str) -> None:
    assert verdict_of(node, shapes={"x": shape}) == Verdict(not reason, reason)


def test_reverse_sequence_needs_distinct_axes() -> None:
    node = make_node("ReverseSequence", ["x", "lens"], ["y"], batch_axis=0, time_axis=0)
    assert verdict_of(node, dtypes={"lens": T.INT64}) == Verdict.no(
        "ReverseSequence needs different batch_axis and time_axis (both are 0)"
    )


def test_pad_takes_no_bool() -> None:
    node = make_node("Pad", ["x", "pads"], ["y"], mode="reflect")
    assert verdict_of(node, dtypes={"pads": T.INT64}) == Verdict.yes()
    assert verdict_of(node, dtype=T.BOOL, dtypes={"pads": T.INT64}).reason == (
        "input 0 ('x') has dtype bool; Pad takes bfloat16, float16, float32, int32, int64"
    )


def test_non_zero_takes_masks_and_gives_int64() -> None:
    node = make_node("NonZero", ["x"], ["i"])
    assert verdict_of(node, dtype=T.BOOL, dtypes={"i": T.INT64}) == Verdict.yes()
    assert verdict_of(node, dtype=T.UINT8, dtypes={"i": T.INT64}).reason == (
        "input 0 ('x') has dtype uint8; NonZero takes bfloat16, bool, float16, float32, int32, "
        "int64"
    )
