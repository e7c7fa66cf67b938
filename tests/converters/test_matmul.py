"""Matrix-product and attention rules."""

from __future__ import annotations

from typing import Any

import pytest
from onnx import TensorProto as T
from onnx.helper import make_node

from hybridtrt.converters.registry import Verdict
from hybridtrt.converters.testing import verdict_of


@pytest.mark.parametrize(
    ("equation", "reason"),
    [
        ("bij,bjk->bik", ""),
        ("...ij,...jk", ""),
        ("BIJ,BJK->BIK", "Einsum equation 'BIJ,BJK->BIK' uses 'BIJK'; TensorRT takes only "
                         "lowercase subscript letters"),
    ],
)  # fmt: skip
def test_einsum_subscripts(equation: str, reason: str) -> None:
    node = make_node("Einsum", ["a", "b"], ["y"], equation=equation)
    assert verdict_of(node) == Verdict(not reason, reason)


@pytest.mark.parametrize("op_type", ["MatMul", "Gemm"])
def test_products_take_floats_only(op_type: str) -> None:
    assert verdict_of(make_node(op_type, ["a", "b"], ["y"]), dtype=T.BFLOAT16) == Verdict.yes()
    assert verdict_of(make_node(op_type, ["a", "b"], ["y"]), dtype=T.INT32).reason == (
        f"input 0 ('a') has dtype int32; {op_type} takes bfloat16, float16, float32"
    )


_QKV = {"q": (1, 8, 16, 64), "k": (1, 8, 16, 64), "v": (1, 8, 16, 64)}


@pytest.mark.parametrize(
    ("inputs", "outputs", "attrs", "shapes", "reason"),
    [
        (["q", "k", "v"], ["y"], {}, _QKV, ""),
        (["q", "k", "v", "mask"], ["y"], {"is_causal": 1}, {**_QKV, "mask": (1, 1, 16, 16)}, ""),
        (["q", "k", "v"], ["y"], {}, {**_QKV, "q": (1, 16, 512)},
         "input 0 'Q' of Attention has rank 3; TensorRT takes rank 4"),
        (["q", "k", "v", "", "pk"], ["y"], {}, _QKV,
         "input 4 'past_key' of Attention is not supported by TensorRT; leave it out"),
        (["q", "k", "v"], ["y", "pk"], {}, _QKV,
         "output 1 'present_key' of Attention is not computed by TensorRT; only nodes that leave "
         "it out can run there"),
        (["q", "k", "v"], ["y"], {"softcap": 30.0}, _QKV,
         "attribute softcap of Attention must be 0.0 for TensorRT, not 30.0"),
    ],
)  # fmt: skip
def test_attention(
    inputs: list[str],
    outputs: list[str],
    attrs: dict[str, Any],
    shapes: dict[str, Any],
    reason: str,
) -> None:
    node = make_node("Attention", inputs, outputs, **attrs)
    assert verdict_of(node, shapes=shapes, dtypes={"mask": T.BOOL}, opset=23) == Verdict(
        not reason, reason
    )


def test_rotary_embedding_needs_int64_positions() -> None:
    node = make_node("RotaryEmbedding", ["x", "cos", "sin", "pos"], ["y"])
    assert verdict_of(node, dtypes={"pos": T.INT64}, opset=23) == Verdict.yes()
    assert verdict_of(node, dtypes={"pos": T.INT32}, opset=23) == Verdict.no(
        "input 3 'position_ids' of RotaryEmbedding has dtype int32; TensorRT takes int64"
    )


@pytest.mark.parametrize(
    ("axis", "reason"),
    [(-2, ""), (1, "attribute axis of TensorScatter must be -2 for TensorRT, not 1")],
)
def test_tensor_scatter_axis(axis: int, reason: str) -> None:
    node = make_node("TensorScatter", ["cache", "update", "idx"], ["out"], axis=axis)
    verdict = verdict_of(node, dtypes={"idx": T.INT64}, opset=24)
    assert verdict == Verdict(not reason, reason)
