"""QuantizeLinear and DequantizeLinear rules."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto as T
from onnx.helper import make_node

from hybridtrt.converters.registry import Verdict
from hybridtrt.converters.testing import verdict_of

_CONSTANT_ZP = "input 2 '{what}' of {op} must be a constant (initializer or Constant) for TensorRT"
_ZERO_ZP = "input 2 '{what}' of {op} must be all zeros: TensorRT quantizes symmetrically"


@pytest.mark.parametrize(
    ("op_type", "what", "x", "y"),
    [
        ("QuantizeLinear", "y_zero_point", T.FLOAT, T.INT8),
        ("DequantizeLinear", "x_zero_point", T.INT8, T.FLOAT),
    ],
)
@pytest.mark.parametrize(
    ("inputs", "constants", "reason"),
    [
        (["x", "s"], {}, ""),
        (["x", "s", "zp"], {"zp": np.zeros(4, np.int8)}, ""),
        (["x", "s", "zp"], {}, _CONSTANT_ZP),
        (["x", "s", "zp"], {"zp": np.array([0, 3], np.int8)}, _ZERO_ZP),
    ],
)
def test_zero_point_must_be_constant_zero(
    op_type: str,
    what: str,
    x: int,
    y: int,
    inputs: list[str],
    constants: dict[str, Any],
    reason: str,
) -> None:
    node = make_node(op_type, inputs, ["y"])
    dtypes = {"x": x, "y": y, "s": T.FLOAT, "zp": T.INT8}
    verdict = verdict_of(node, dtypes=dtypes, constants=constants, opset=19)
    expected = reason.format(what=what, op=op_type)
    assert verdict == Verdict(not expected, expected)


def test_fp8_zero_point_of_zeros_is_fine() -> None:
    node = make_node("DequantizeLinear", ["x", "s", "zp"], ["y"])
    zeros = np.zeros(2, ml_dtypes.float8_e4m3fn)
    dtypes = {"x": T.FLOAT8E4M3FN, "zp": T.FLOAT8E4M3FN}
    assert verdict_of(node, dtypes=dtypes, constants={"zp": zeros}, opset=19) == Verdict.yes()


@pytest.mark.parametrize(
    ("op_type", "dtypes", "reason"),
    [
        ("QuantizeLinear", {"y": T.INT4}, ""),
        ("QuantizeLinear", {"y": T.UINT8},
         "output 0 ('y') has dtype uint8; QuantizeLinear gives float4_e2m1fn, float8_e4m3fn, "
         "int4, int8"),
        ("DequantizeLinear", {"x": T.INT32},
         "input 0 ('x') has dtype int32; DequantizeLinear takes float4_e2m1fn, float8_e4m3fn, "
         "int4, int8"),
        ("DequantizeLinear", {"x": T.INT8, "s": T.INT32},
         "input 1 'x_scale' of DequantizeLinear has dtype int32; TensorRT takes bfloat16, "
         "float16, float32"),
    ],
)  # fmt: skip
def test_quantized_types(op_type: str, dtypes: dict[str, Any], reason: str) -> None:
    verdict = verdict_of(make_node(op_type, ["x", "s"], ["y"]), dtypes=dtypes, opset=21)
    assert verdict == Verdict(not reason, reason)
