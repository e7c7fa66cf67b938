"""If, Loop and Scan rules, whose bodies must be supported as a whole."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper
from onnx.helper import make_graph, make_node, make_tensor_value_info

from hybridtrt.converters.registry import Verdict
from hybridtrt.converters.testing import verdict_of


def _branch(name: str, op_type: str, out: str, dims: list[int] | None = None) -> onnx.GraphProto:
    return make_graph(
        [make_node(op_type, ["a"], [out])], name, [], [make_tensor_value_info(out, T.FLOAT, dims)]
    )


def _if(then_graph: onnx.GraphProto, else_graph: onnx.GraphProto) -> onnx.NodeProto:
    return make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph)


@pytest.mark.parametrize(
    ("then_graph", "else_graph", "reason"),
    [
        (_branch("t", "Relu", "t_out"), _branch("e", "Neg", "e_out"), ""),
        (_branch("t", "Relu", "t_out"), _branch("e", "Unique", "e_out"),
         "the else_branch of If cannot run in TensorRT: body node 'Unique': no TensorRT rule "
         "for Unique"),
        (_branch("t", "Relu", "same"), _branch("e", "Neg", "same"),
         "both branches of If output the tensor(s) ['same']; TensorRT needs distinct output "
         "names in the two branches"),
        (_branch("t", "Relu", "t_out", [2, 3]), _branch("e", "Neg", "e_out", [6]),
         "If output 0 has rank 2 in then_branch but 1 in else_branch; TensorRT needs the same "
         "rank"),
    ],
)  # fmt: skip
def test_if(then_graph: onnx.GraphProto, else_graph: onnx.GraphProto, reason: str) -> None:
    verdict = verdict_of(_if(then_graph, else_graph), dtypes={"cond": T.BOOL})
    assert verdict == Verdict(not reason, reason)


def test_subgraph_judge_can_be_injected() -> None:
    node = _if(_branch("t", "Relu", "t_out"), _branch("e", "Neg", "e_out"))
    verdict = verdict_of(
        node, dtypes={"cond": T.BOOL}, subgraph_judge=lambda g: Verdict.no(f"{g.name} is bad")
    )
    # make_node sorts attributes by name, so else_branch is asked first.
    assert verdict == Verdict.no("the else_branch of If cannot run in TensorRT: e is bad")


def _loop_body(scan_outputs: int, carried_out_dims: list[int] | None = None) -> onnx.GraphProto:
    inputs = [
        make_tensor_value_info("i", T.INT64, []),
        make_tensor_value_info("c_in", T.BOOL, []),
        make_tensor_value_info("v_in", T.FLOAT, [2, 3]),
    ]
    outputs = [
        make_tensor_value_info("c_out", T.BOOL, []),
        make_tensor_value_info("v_out", T.FLOAT, carried_out_dims or [2, 3]),
    ] + [make_tensor_value_info(f"s{k}", T.FLOAT, [2, 3]) for k in range(scan_outputs)]
    nodes = [make_node("Identity", ["c_in"], ["c_out"]), make_node("Relu", ["v_in"], ["v_out"])]
    nodes += [make_node("Neg", ["v_in"], [f"s{k}"]) for k in range(scan_outputs)]
    return make_graph(nodes, "body", inputs, outputs)


_NO_TRIP_COUNT = (
    "Loop has scan outputs but no bounded trip count M; TensorRT sizes scan outputs by M, so "
    "their length cannot depend on the loop condition alone"
)


@pytest.mark.parametrize(
    ("body", "trip_input", "constants", "reason"),
    [
        (_loop_body(0), "", {}, ""),
        (_loop_body(1), "m", {"m": np.array(5)}, ""),
        (_loop_body(1), "m", {}, ""),
        (_loop_body(1), "", {}, _NO_TRIP_COUNT),
        (_loop_body(1), "m", {"m": np.array(2**63 - 1)}, _NO_TRIP_COUNT),
        (_loop_body(0, [3, 3]), "", {},
         "Loop-carried value 0 ('v_in') changes shape from [2, 3] to [3, 3] in one iteration; "
         "TensorRT needs a fixed shape"),
    ],
)  # fmt: skip
def test_loop(
    body: onnx.GraphProto, trip_input: str, constants: dict[str, Any], reason: str
) -> None:
    scan = [f"y{k}" for k in range(len(body.output) - 2)]
    node = make_node("Loop", [trip_input, "cond", "v"], ["v_final", *scan], body=body)
    verdict = verdict_of(node, dtypes={"m": T.INT64, "cond": T.BOOL}, constants=constants, opset=13)
    assert verdict == Verdict(not reason, reason)


def test_loop_body_with_unsupported_node() -> None:
    body = _loop_body(0)
    body.node.append(make_node("StringNormalizer", ["x"], ["z"], name="norm"))
    node = make_node("Loop", ["", "cond", "v"], ["v_final"], body=body)
    assert verdict_of(node, dtypes={"cond": T.BOOL}) == Verdict.no(
        "the body of Loop cannot run in TensorRT: body node 'norm': no TensorRT rule for "
        "StringNormalizer"
    )


def test_scan_takes_floats_only() -> None:
    body = make_graph(
        [make_node("Add", ["s", "x"], ["s2"]), make_node("Identity", ["s2"], ["o"])],
        "body",
        [make_tensor_value_info(n, T.FLOAT, [4]) for n in ("s", "x")],
        [make_tensor_value_info(n, T.FLOAT, [4]) for n in ("s2", "o")],
    )
    node = helper.make_node("Scan", ["s0", "xs"], ["s_final", "os"], body=body, num_scan_inputs=1)
    assert verdict_of(node) == Verdict.yes()
    assert verdict_of(node, dtype=T.INT32).reason == (
        "input 0 ('s0') has dtype int32; Scan takes bfloat16, float16, float32"
    )
