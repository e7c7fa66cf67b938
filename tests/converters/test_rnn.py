"""RNN, GRU and LSTM rules."""

from __future__ import annotations

from typing import Any

import onnx
import pytest
from onnx import TensorProto as T
from onnx.helper import make_node

from hybridtrt.converters.registry import Verdict
from hybridtrt.converters.testing import verdict_of

_GATES = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


def _layer(op_type: str, **attrs: Any) -> onnx.NodeProto:
    inputs = ["x", "w", "r", "b", "lens", "h0"] + (["c0"] if op_type == "LSTM" else [])
    return make_node(op_type, inputs, ["y"], hidden_size=4, **attrs)


@pytest.mark.parametrize("op_type", ["RNN", "GRU", "LSTM"])
def test_plain_layer_with_int32_sequence_lengths(op_type: str) -> None:
    assert verdict_of(_layer(op_type), dtypes={"lens": T.INT32}) == Verdict.yes()


@pytest.mark.parametrize("op_type", ["RNN", "GRU", "LSTM"])
def test_batch_first_layout_is_rejected(op_type: str) -> None:
    assert verdict_of(_layer(op_type, layout=1), opset=14) == Verdict.no(
        f"attribute layout of {op_type} must be 0 for TensorRT, not 1"
    )


def test_lstm_coupled_input_forget_is_rejected() -> None:
    assert verdict_of(_layer("LSTM", input_forget=1)) == Verdict.no(
        "attribute input_forget of LSTM must be 0 for TensorRT, not 1"
    )


@pytest.mark.parametrize("op_type", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize(
    ("reverse", "alphas", "reason"),
    [
        ("same", None, ""),
        ("relu", None, "bidirectional {op} uses different activations for the forward and "
                       "reverse pass, which TensorRT does not support"),
        ("same", "differ", "bidirectional {op} uses different activation_alpha for the forward "
                           "and reverse pass, which TensorRT does not support"),
    ],
)  # fmt: skip
def test_bidirectional_activations_must_match(
    op_type: str, reverse: str, alphas: str | None, reason: str
) -> None:
    forward = _GATES[op_type]
    backward = forward if reverse == "same" else ["Relu"] * len(forward)
    attrs: dict[str, Any] = {"direction": "bidirectional", "activations": forward + backward}
    if alphas:
        attrs["activation_alpha"] = [0.1] * len(forward) + [0.2] * len(forward)
    expected = reason.format(op=op_type)
    assert verdict_of(_layer(op_type, **attrs)) == Verdict(not expected, expected)
