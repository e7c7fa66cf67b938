"""Reduction rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx.helper import make_node

from hybridtrt.converters.registry import Verdict
from hybridtrt.converters.testing import verdict_of


@pytest.mark.parametrize("op_type", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceL2"])
@pytest.mark.parametrize(
    ("constants", "reason"),
    [
        ({"axes": np.array([1])}, ""),
        ({}, "input 1 'axes' of {op} must be a constant (initializer or Constant) for TensorRT"),
    ],
)
def test_axes_input_must_be_constant(op_type: str, constants: dict[str, Any], reason: str) -> None:
    node = make_node(op_type, ["x", "axes"], ["y"])
    verdict = verdict_of(node, dtypes={"axes": T.INT64}, constants=constants, opset=18)
    expected = reason.format(op=op_type)
    assert verdict == Verdict(not expected, expected)


def test_axes_attribute_and_no_axes_are_fine() -> None:
    assert verdict_of(make_node("ReduceMean", ["x"], ["y"], axes=[1]), opset=13) == Verdict.yes()
    assert verdict_of(make_node("ReduceSum", ["x"], ["y"]), opset=13) == Verdict.yes()


def test_reduce_rejects_bool() -> None:
    verdict = verdict_of(make_node("ReduceMax", ["x"], ["y"]), dtype=T.BOOL, opset=20)
    assert verdict == Verdict.no(
        "input 0 ('x') has dtype bool; ReduceMax takes bfloat16, float16, float32, int32, int64"
    )


@pytest.mark.parametrize("op_type", ["ArgMax", "ArgMin"])
def test_arg_reductions_give_int64(op_type: str) -> None:
    node = make_node(op_type, ["x"], ["i"], select_last_index=1)
    assert verdict_of(node, dtypes={"i": T.INT64}, opset=13) == Verdict.yes()
    assert verdict_of(node, dtypes={"i": T.INT32}, opset=13) == Verdict.no(
        f"output 0 ('i') has dtype int32; {op_type} gives int64"
    )
