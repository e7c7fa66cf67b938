"""Inputs whose values set shapes: unknown values never reach an engine's shape ranges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx.helper as h
import pytest
from onnx import TensorProto

import hybridtrt
from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.compiler.filters import (
    ClusterFacts,
    drop_value_shaped,
    settle,
    value_shaped_tensors,
)
from hybridtrt.core.partition import DependencyGraph, Partition
from hybridtrt.runtime import Config, create_predictor
from tests.models import f32, make
from tests.suites import ort_run

_EDGE = ("a tensor at its cluster's edge has a shape set by values of model inputs without "
         "warm-up data (Input(warmup_data=...) lets TensorRT take it)")


def _facts(nodes: list[tuple[str, list[str], list[str]]], unknown: set[str],
           static: frozenset[str] = frozenset(), ranked: frozenset[str] = frozenset(),
           outputs: frozenset[str] = frozenset()) -> ClusterFacts:
    """Facts of a chain of (op, inputs, outputs) nodes; Reshape's input 1 is a shape tensor."""
    producer = {o: k for k, (_, _, outs) in enumerate(nodes) for o in outs}
    consumers: dict[str, list[int]] = {}
    for k, (_, ins, _) in enumerate(nodes):
        for name in ins:
            consumers.setdefault(name, []).append(k)
    edges = [(producer[n], k) for k, (_, ins, _) in enumerate(nodes) for n in ins if n in producer]
    return ClusterFacts(
        graph=DependencyGraph(len(nodes), edges), op_types=[op for op, _, _ in nodes],
        inputs=[ins for _, ins, _ in nodes], outputs=[outs for _, _, outs in nodes],
        producer=producer, consumers=consumers, graph_outputs=outputs, constants=frozenset(),
        shape_inputs=lambda k: (1,) if nodes[k][0] == "Reshape" else (),
        supported=[True] * len(nodes),
        position=list(range(len(nodes))),
        value_shaped=lambda k: nodes[k][1][1:] if nodes[k][0] == "Reshape" else (),
        unknown_values=frozenset(unknown), static_shapes=static, ranked=ranked,
    )


_CHAIN = [
    ("Shape", ["x"], ["s"]),         # 0: the value of a known shape is known
    ("Reshape", ["x", "s"], ["a"]),  # 1
    ("Reshape", ["x", "k"], ["b"]),  # 2: k is a model input of unknown value
    ("Relu", ["b"], ["c"]),          # 3
    ("Relu", ["a"], ["d"]),          # 4
    ("Shape", ["b"], ["t"]),         # 5: the shape of b is unknown, so t's value is
    ("Reshape", ["x", "t"], ["e"]),  # 6
]


def test_unknown_values_set_unknown_shapes_downstream() -> None:
    known = frozenset({"t"})  # shape inference knows Shape's output is [rank]
    assert value_shaped_tensors(_facts(_CHAIN, {"x", "k"}, known)) == {"b", "c", "e"}
    assert value_shaped_tensors(_facts(_CHAIN, {"x", "k"}, known | {"c"})) == {"b", "e"}
    assert value_shaped_tensors(_facts(_CHAIN, {"x"})) == frozenset()  # k's values are given


def test_a_member_reading_an_unknown_shape_from_outside_leaves_its_cluster() -> None:
    facts = _facts(_CHAIN, {"x", "k"}, ranked=frozenset({"b"}))
    assert drop_value_shaped([Partition((3, 4))], facts) == [Partition((4,))]
    assert drop_value_shaped([Partition((2, 3, 4))], facts) == [Partition((2, 3, 4))]
    # b leaves {2} with a known rank: its range is only reported; without a rank, 2 leaves too.
    assert drop_value_shaped([Partition((2,))], facts) == [Partition((2,))]
    unranked = _facts(_CHAIN, {"x", "k"})
    assert drop_value_shaped([Partition((2,)), Partition((0, 1, 4))], unranked) == [
        Partition((0, 1, 4))]


def test_settle_never_pulls_back_a_node_it_dropped() -> None:
    """Shape(b) leaves for reading an unknown shape; the Reshape it feeds must not pull it back
    (the filters would undo each other forever), so the Reshape leaves too."""
    facts = _facts(_CHAIN, {"x", "k"}, frozenset({"t"}))
    parts, why = settle([Partition((5, 6))], facts)
    assert parts == [] and why == {5: _EDGE, 6: "reads a shape tensor computed outside TensorRT"}
    assert settle([Partition((1, 4))], facts) == ([Partition((0, 1, 4))], {})
    # The engine stage only cuts: a piece never takes in a node TensorRT refused.
    assert settle([Partition((1, 4))], facts, pull=False) == (
        [Partition((4,))], {1: "reads a shape tensor computed outside TensorRT"})


def _reshape_by_input() -> onnx.ModelProto:
    nodes = [
        h.make_node("Relu", ["x"], ["a"], name="relu_a"),
        h.make_node("Reshape", ["a", "shape"], ["b"], name="reshape"),
        h.make_node("Relu", ["b"], ["y"], name="relu_y"),
    ]
    shape = h.make_tensor_value_info("shape", TensorProto.INT64, [2])
    return make(nodes, [f32("x", [2, 3]), shape], [f32("y", ["a", "b"])])


def _reduce_by_input() -> onnx.ModelProto:
    nodes = [
        h.make_node("Relu", ["x"], ["a"], name="relu_a"),
        h.make_node("ReduceSum", ["a", "axes"], ["b"], name="reduce", keepdims=0),
        h.make_node("Relu", ["b"], ["y"], name="relu_y"),
    ]
    axes = h.make_tensor_value_info("axes", TensorProto.INT64, [1])
    return make(nodes, [f32("x", [2, 3]), axes], [f32("y", ["a"])])


def _runs_every_value(model: onnx.ModelProto, name: str, values: list[np.ndarray],
                      hybrid: hybridtrt.HybridModel, tmp_path: Path) -> None:
    path = hybrid.save(tmp_path / "m.onnx")
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    for isolated in (False, True):
        config = Config(path)
        config.isolate_engines(isolated)
        predictor = create_predictor(config)
        for value in values:
            want = ort_run(model, {"x": x, name: value})[0]
            np.testing.assert_allclose(predictor.run_dict({"x": x, name: value})["y"], want)


@pytest.mark.parametrize(("model", "name", "values"), [
    (_reshape_by_input, "shape", [np.array([3, 2]), np.array([1, 6]), np.array([6, 1])]),
    (_reduce_by_input, "axes", [np.array([0]), np.array([1]), np.array([-1])]),
])  # fmt: skip
def test_shapes_set_by_model_inputs_stay_off_engine_edges_and_every_value_runs(
    model, name: str, values: list[np.ndarray], tmp_path: Path  # noqa: ANN001
) -> None:
    original = model()
    hybrid = convert(original, TensorRTConfig(inputs=[], min_subgraph_size=1))
    assert [[n.name for n in e.subgraph.node] for e in hybrid.engines] == [["relu_a"]]
    assert {o.name: o.reason for o in hybrid.report().outside}["relu_y"] == _EDGE
    _runs_every_value(original, name, values, hybrid, tmp_path)


def test_warmup_data_for_the_shape_lets_its_consumers_into_engines() -> None:
    config = TensorRTConfig(inputs=[Input("shape", warmup_data=[np.array([3, 2])])],
                            min_subgraph_size=1)
    hybrid = convert(_reshape_by_input(), config)
    assert [[n.name for n in e.subgraph.node] for e in hybrid.engines] == [["relu_a"], ["relu_y"]]
    assert hybrid.engines[1].profiles[0]["b"] == {"min": [3, 2], "opt": [3, 2], "max": [3, 2]}


def test_a_dynamic_input_that_reaches_no_engine_needs_no_input(tmp_path: Path) -> None:
    nodes = [
        h.make_node("Relu", ["x"], ["y"], name="relu"),
        h.make_node("Sin", ["z"], ["w"], name="sin"),
    ]
    model = make(nodes, [f32("x", [2, 3]), f32("z", ["N"])], [f32("y", [2, 3]), f32("w", ["N"])])
    hybrid = convert(model, TensorRTConfig(inputs=[], disable_ops=["Sin"], min_subgraph_size=1))
    assert [[n.name for n in e.subgraph.node] for e in hybrid.engines] == [["relu"]]
    with pytest.raises(hybridtrt.InputError, match=r"'z' \[N\]"):
        convert(model, TensorRTConfig(inputs=[], min_subgraph_size=1))


def test_warmup_runs_compute_only_what_the_engines_take() -> None:
    """Random values for ``shape`` make its Reshape fail; no engine needs it, so it never runs."""
    nodes = [
        h.make_node("Relu", ["x"], ["a"], name="relu"),
        h.make_node("Neg", ["a"], ["y"], name="neg"),
        h.make_node("Reshape", ["x", "shape"], ["z"], name="reshape"),
    ]
    shape = h.make_tensor_value_info("shape", TensorProto.INT64, [2])
    model = make(nodes, [f32("x", ["N", 3]), shape], [f32("y", ["N", 3]), f32("z", ["a", "b"])])
    config = TensorRTConfig(inputs=[Input("x", [1, 3], [2, 3], [4, 3])], min_subgraph_size=1)
    hybrid = convert(model, config)
    engine, = hybrid.engines
    assert [n.name for n in engine.subgraph.node] == ["relu", "neg"]
    assert engine.profiles[0]["x"] == {"min": [1, 3], "opt": [2, 3], "max": [4, 3]}


def test_shape_kinds_and_dtypes_agree_with_the_infos() -> None:
    from hybridtrt.compiler.shapes import static_shape
    from hybridtrt.core.graph import GraphIndex

    values = [f32("fixed", [2, 3]), f32("empty", [0, 3]), f32("named", ["N", 3]),
              f32("unranked", None), f32("scalar", []),
              h.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, [2])]
    odd = f32("open", [2, 3])
    odd.type.tensor_type.shape.dim[0].Clear()  # neither a size nor a name
    negative = f32("negative", [2, 3])
    negative.type.tensor_type.shape.dim[1].dim_value = -1
    nodes = [h.make_node("Identity", ["x"], [v.name]) for v in [*values, odd, negative]]
    graph = h.make_graph(nodes + [h.make_node("Identity", ["w"], ["plain"])], "g",
                         [f32("x", [2, 3])], [f32("fixed", [2, 3])],
                         [onnx.numpy_helper.from_array(np.zeros((4, 1), np.float32), "w")],
                         value_info=[*values[1:], odd, negative])
    index = GraphIndex(h.make_model(graph))
    names = [*index.producer, "x", "w", "unknown"]
    expected = (frozenset(n for n in names if static_shape(index.info(n)) is not None),
                frozenset(n for n in names if index.info(n).rank is not None))
    index = GraphIndex(h.make_model(graph))  # no info made yet
    assert index.shape_kinds(names) == expected
    table = index.dtypes()
    assert {n: table.get(n) for n in names} == {n: index.dtype(n) for n in names}
    assert table["seq"] is None and table["w"] == TensorProto.FLOAT and "unknown" not in table
    assert expected == ({"fixed", "empty", "scalar", "x", "w"},
                        {"fixed", "empty", "named", "scalar", "open", "negative", "x", "w"})
    for name in names:
        index.info(name)
    assert index.shape_kinds(names) == expected  # again, from the infos now made
