"""TopK, NMS, CumSum, OneHot, scatter, random, window, STFT and RoiAlign rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx.helper import make_node

from hybridtrt.compiler.capability import judge_node
from hybridtrt.converters.registry import REGISTRY, Verdict
from hybridtrt.converters.testing import FakeContext, verdict_of
from hybridtrt.trt.library import RTX


@pytest.mark.parametrize(
    ("opset", "node", "constants", "reason"),
    [
        (11, make_node("TopK", ["x", "k"], ["v", "i"]), {"k": np.array([3840])}, ""),
        (11, make_node("TopK", ["x", "k"], ["v", "i"]), {}, ""),
        (11, make_node("TopK", ["x", "k"], ["v", "i"]), {"k": np.array([5000])},
         "TopK with K=5000 is over TensorRT's limit of 3840"),
        (9, make_node("TopK", ["x"], ["v", "i"], k=4000), {},
         "TopK with K=4000 is over TensorRT's limit of 3840"),
        (11, make_node("TopK", ["x", "k"], ["v", "i"], sorted=0), {},
         "attribute sorted of TopK must be 1 for TensorRT, not 0"),
    ],
)  # fmt: skip
def test_topk(opset: int, node: onnx.NodeProto, constants: dict[str, Any], reason: str) -> None:
    dtypes = {"k": T.INT64, "i": T.INT64}
    verdict = verdict_of(node, dtypes=dtypes, constants=constants, opset=opset)
    assert verdict == Verdict(not reason, reason)


@pytest.mark.parametrize(
    ("node", "dtypes", "reason"),
    [
        (make_node("CumSum", ["x", "axis"], ["y"]), {"axis": T.INT64},
         "input 1 'axis' of CumSum must be a constant (initializer or Constant) for TensorRT"),
        (make_node("OneHot", ["i", "depth", "vals"], ["y"]), {"i": T.INT64, "depth": T.INT64},
         "input 1 'depth' of OneHot must be a constant (initializer or Constant) for TensorRT"),
        (make_node("STFT", ["sig", "step", "win"], ["y"]), {"step": T.INT64},
         "input 1 'frame_step' of STFT must be a constant (initializer or Constant) for "
         "TensorRT"),
    ],
)  # fmt: skip
def test_inputs_that_must_be_constant(
    node: onnx.NodeProto, dtypes: dict[str, Any], reason: str
) -> None:
    assert verdict_of(node, dtypes=dtypes, opset=17) == Verdict.no(reason)


def test_one_hot_indices_must_be_integers() -> None:
    node = make_node("OneHot", ["i", "depth", "vals"], ["y"])
    constants = {"depth": np.array(10)}
    assert verdict_of(node, dtypes={"i": T.INT32}, constants=constants) == Verdict.yes()
    assert verdict_of(node, dtypes={"i": T.FLOAT}, constants=constants) == Verdict.no(
        "input 0 'indices' of OneHot has dtype float32; TensorRT takes int32, int64"
    )


@pytest.mark.parametrize(
    ("reduction", "reason"),
    [
        ("none", ""),
        ("add", "attribute reduction of ScatterND must be 'none' for TensorRT, not 'add'"),
    ],
)
def test_scatter_nd_has_no_reduction(reduction: str, reason: str) -> None:
    node = make_node("ScatterND", ["data", "idx", "upd"], ["y"], reduction=reduction)
    verdict = verdict_of(node, dtypes={"idx": T.INT64}, opset=18)
    assert verdict == Verdict(not reason, reason)


def test_scatter_elements_keeps_its_reduction() -> None:
    node = make_node("ScatterElements", ["data", "idx", "upd"], ["y"], reduction="max")
    assert verdict_of(node, dtypes={"idx": T.INT64}, opset=18) == Verdict.yes()
    ctx = FakeContext.of(node, dtypes={"idx": T.INT64}, opset=18)
    assert judge_node(ctx, REGISTRY) == Verdict.yes()
    assert judge_node(ctx, REGISTRY.for_library(RTX)).reason.startswith(
        "TensorRT-RTX: attribute reduction of ScatterElements must be 'none'")


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ((1, 256, 1), ""),
        ((1, 256, 2), "STFT of a complex signal (last dim 2) is not supported by TensorRT"),
    ],
)
def test_stft_takes_real_signals(shape: tuple[Any, ...], reason: str) -> None:
    node = make_node("STFT", ["sig", "step", "win"], ["y"])
    constants = {"step": np.array(64), "win": np.ones(128, np.float32)}
    verdict = verdict_of(
        node, shapes={"sig": shape}, dtypes={"step": T.INT64}, constants=constants, opset=17
    )
    assert verdict == Verdict(not reason, reason)


def test_random_like_takes_any_input_type() -> None:
    node = make_node("RandomUniformLike", ["x"], ["y"], seed=3.0)
    assert verdict_of(node, dtypes={"x": T.INT64, "y": T.FLOAT}) == Verdict.yes()
    assert verdict_of(node, dtypes={"x": T.INT64, "y": T.INT64}).reason == (
        "output 0 ('y') has dtype int64; RandomUniformLike gives bfloat16, float16, float32"
    )


def test_nms_gives_int64_and_takes_no_bf16() -> None:
    node = make_node("NonMaxSuppression", ["boxes", "scores", "max"], ["sel"])
    dtypes = {"max": T.INT64, "sel": T.INT64}
    assert verdict_of(node, dtypes=dtypes) == Verdict.yes()
    assert verdict_of(node, dtype=T.BFLOAT16, dtypes=dtypes).reason == (
        "input 0 ('boxes') has dtype bfloat16; NonMaxSuppression takes float16, float32"
    )
