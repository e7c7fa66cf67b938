"""Element-wise math, comparison, logic and activation rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx.helper import make_node

from hybridtrt.converters.registry import Verdict
from hybridtrt.converters.testing import verdict_of


@pytest.mark.parametrize(
    ("op_type", "dtype"),
    [
        ("Relu", T.FLOAT), ("Relu", T.INT64), ("Sqrt", T.BFLOAT16), ("Add", T.INT32),
        ("Mean", T.FLOAT8E4M3FN), ("Gelu", T.INT8), ("Not", T.BOOL), ("Mish", T.FLOAT16),
        ("Clip", T.INT64),
    ],
)  # fmt: skip
def test_accepts_listed_dtypes(op_type: str, dtype: int) -> None:
    inputs = ["a", "b"] if op_type in ("Add", "Mean") else ["a"]
    assert verdict_of(make_node(op_type, inputs, ["y"]), dtype=dtype, opset=20) == Verdict.yes()


@pytest.mark.parametrize(
    ("op_type", "dtype", "reason"),
    [
        ("Sqrt", T.INT32, "input 0 ('a') has dtype int32; Sqrt takes bfloat16, float16, float32"),
        ("Mish", T.BFLOAT16, "input 0 ('a') has dtype bfloat16; Mish takes float16, float32"),
        ("Not", T.FLOAT, "input 0 ('a') has dtype float32; Not takes bool"),
        ("Abs", T.UINT8, "input 0 ('a') has dtype uint8; Abs takes "
                         "bfloat16, float16, float32, int32, int64"),
    ],
)  # fmt: skip
def test_rejects_unlisted_dtypes(op_type: str, dtype: int, reason: str) -> None:
    assert verdict_of(make_node(op_type, ["a"], ["y"]), dtype=dtype, opset=18) == Verdict.no(reason)


@pytest.mark.parametrize(
    ("op_type", "in_dtype", "reason"),
    [
        ("Equal", T.INT64, ""),
        ("Less", T.FLOAT16, ""),
        ("Equal", T.BOOL, "input 0 ('a') has dtype bool; Equal takes "
                          "bfloat16, float16, float32, int32, int64"),
        ("IsNaN", T.INT32, ""),
        ("IsInf", T.INT32, "input 0 ('a') has dtype int32; IsInf takes bfloat16, float16, float32"),
    ],
)  # fmt: skip
def test_predicates_give_bool(op_type: str, in_dtype: int, reason: str) -> None:
    inputs = ["a"] if op_type.startswith("Is") else ["a", "b"]
    node = make_node(op_type, inputs, ["y"])
    verdict = verdict_of(node, dtype=in_dtype, dtypes={"y": T.BOOL})
    assert verdict == Verdict(not reason, reason)


def test_comparison_output_must_be_bool() -> None:
    verdict = verdict_of(make_node("Greater", ["a", "b"], ["y"]), dtype=T.FLOAT)
    assert verdict == Verdict.no("output 0 ('y') has dtype float32; Greater gives bool")


def test_pow_exponent_may_differ_from_base() -> None:
    node = make_node("Pow", ["a", "e"], ["y"])
    assert verdict_of(node, dtype=T.FLOAT, dtypes={"e": T.INT64}) == Verdict.yes()


@pytest.mark.parametrize(
    ("fmod", "dtype", "supported"),
    [(0, T.INT32, True), (1, T.FLOAT, True), (0, T.FLOAT, False), (0, None, True)],
)
def test_mod_with_fmod_0_needs_integers(fmod: int, dtype: int | None, supported: bool) -> None:
    verdict = verdict_of(make_node("Mod", ["a", "b"], ["y"], fmod=fmod), dtype=dtype)
    reason = (
        ""
        if supported
        else ("Mod with fmod=0 takes integer inputs only; floating-point inputs need fmod=1")
    )
    assert verdict == Verdict(supported, reason)


@pytest.mark.parametrize(
    ("opset", "axis", "shape", "reason"),
    [
        (13, -1, (2, "n", 8), ""),
        (13, 1, (2, "n", 8), "Hardmax needs the size of axis 1 of its input when the engine is "
                             "built, but it is ['n']"),
        (11, 1, (2, 4, "n"), "Hardmax needs the size of axis 1 of its input when the engine is "
                             "built, but it is [4, 'n']"),
        (13, 1, None, ""),
    ],
)  # fmt: skip
def test_hardmax_axis_must_be_known(
    opset: int, axis: int, shape: tuple[Any, ...] | None, reason: str
) -> None:
    node = make_node("Hardmax", ["x"], ["y"], axis=axis)
    verdict = verdict_of(node, shapes={"x": shape}, opset=opset)
    assert verdict == Verdict(not reason, reason)


@pytest.mark.parametrize(
    ("constants", "reason"),
    [
        ({"t": np.array(False)}, ""),
        ({}, "input 2 'training_mode' of Dropout must be a constant (initializer or Constant) "
             "for TensorRT"),
        ({"t": np.array(True)}, "input 2 'training_mode' of Dropout must be false: TensorRT only "
                                "runs inference"),
    ],
)  # fmt: skip
def test_dropout_is_inference_only(constants: dict[str, Any], reason: str) -> None:
    node = make_node("Dropout", ["x", "r", "t"], ["y", "mask"])
    verdict = verdict_of(node, dtypes={"t": T.BOOL, "mask": T.BOOL}, constants=constants)
    assert verdict == Verdict(not reason, reason)


def test_dropout_without_training_mode_input() -> None:
    assert verdict_of(make_node("Dropout", ["x"], ["y"]), opset=11) == Verdict.yes()
