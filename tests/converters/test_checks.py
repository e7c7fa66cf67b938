"""The check builders and FakeContext themselves, on edge cases the domain tests do not reach."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx.helper import make_node

from hybridtrt.converters.checks import (
    attr_in,
    attr_value,
    constant_input,
    first_opset,
    input_value,
    max_input_rank,
    no_attr,
)
from hybridtrt.converters.registry import TensorInfo, Verdict
from hybridtrt.converters.testing import FakeContext


def test_fake_context_describes_omitted_and_missing_inputs() -> None:
    ctx = FakeContext.of(make_node("Foo", ["x", ""], ["y"]), shapes={"x": (1, "n")})
    assert ctx.input(0) == TensorInfo("x", T.FLOAT, (1, "n"), False)
    assert ctx.input(1) == TensorInfo("") and ctx.input(7) == TensorInfo("")
    assert ctx.output(0).name == "y" and ctx.output(3) == TensorInfo("")


def test_constant_input_accepts_flagged_constants_without_values() -> None:
    node = make_node("Squeeze", ["x", "axes"], ["y"])
    flagged = FakeContext(node, (TensorInfo("x"), TensorInfo("axes", T.INT64, (1,), True)))
    assert constant_input(1, "axes")(flagged) == Verdict.yes()
    assert input_value(flagged, 1) is None


def test_constant_input_passes_when_the_input_is_omitted() -> None:
    ctx = FakeContext.of(make_node("Squeeze", ["x", ""], ["y"]))
    assert constant_input(1, "axes")(ctx) == Verdict.yes()


def test_string_attributes_are_decoded() -> None:
    ctx = FakeContext.of(make_node("Foo", [], [], mode="linear", names=["a", "b"]))
    assert attr_value(ctx, "mode") == "linear" and attr_value(ctx, "names") == ["a", "b"]
    assert attr_in("mode", ("linear",))(ctx) == Verdict.yes()
    assert attr_value(ctx, "missing", 3) == 3


def test_unknown_rank_passes_rank_checks() -> None:
    ctx = FakeContext.of(make_node("Foo", ["x"], ["y"]))
    assert max_input_rank(2)(ctx) == Verdict.yes()


def test_no_attr_names_the_attribute() -> None:
    ctx = FakeContext.of(make_node("Foo", [], [], sparse_value=np.array([1.0])))
    assert no_attr("sparse_value")(ctx) == Verdict.no(
        "attribute 'sparse_value' of Foo is not supported by TensorRT"
    )


@pytest.mark.parametrize(
    ("op_type", "opset"),
    [("Relu", 9), ("Gelu", 20), ("TensorScatter", 24), ("ImageScaler", 9), ("Upsample", 9)],
)
def test_first_opset(op_type: str, opset: int) -> None:
    assert first_opset(op_type) == opset
