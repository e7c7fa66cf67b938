"""Parser verdicts remembered per cluster structure (hybridtrt/trt/verdicts.py)."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnx.helper as h
from onnx import numpy_helper

from hybridtrt import TensorRTConfig, convert
from hybridtrt.trt.builder import TensorRTBuilder
from hybridtrt.trt.cache import EngineCache
from hybridtrt.trt.verdicts import structure_key
from tests.fake_tensorrt import FakeBackend
from tests.models import f32, make


def blocks(count: int, scale: float = 0.5) -> onnx.ModelProto:
    """``count`` blocks Relu -> Add(w) -> Mul(w), each followed by a Sin (kept out)."""
    nodes, value = [], "x"
    for k in range(count):
        nodes += [h.make_node("Relu", [value], [f"r{k}"], name=f"relu{k}"),
                  h.make_node("Add", [f"r{k}", "w"], [f"a{k}"], name=f"add{k}"),
                  h.make_node("Mul", [f"a{k}", "w"], [f"m{k}"], name=f"mul{k}"),
                  h.make_node("Sin", [f"m{k}"], [f"s{k}"], name=f"sin{k}")]
        value = f"s{k}"
    w = numpy_helper.from_array(np.full((1, 4), scale, np.float32), "w")
    return make(nodes, [f32("x", [1, 4])], [f32(value, [1, 4])], [w])


def cluster(model: onnx.ModelProto, names: list[str], rename: str = "") -> onnx.ModelProto:
    """The nodes ``names`` of ``model`` as a model of their own, tensors prefixed by ``rename``."""
    wanted = [n for n in model.graph.node if n.name in names]
    nodes = [h.make_node(n.op_type, [rename + i for i in n.input], [rename + o for o in n.output],
                         name=rename + n.name, **{a.name: h.get_attribute_value(a) for a in n.attribute})
             for n in wanted]
    first, last = wanted[0].input[0], wanted[-1].output[0]
    weights = [onnx.TensorProto() for _ in model.graph.initializer]
    for copy, tensor in zip(weights, model.graph.initializer):
        copy.CopyFrom(tensor)
        copy.name = rename + tensor.name
    return make(nodes, [f32(rename + first, [1, 4])], [f32(rename + last, [1, 4])], weights)


def _parsed(backend: FakeBackend) -> list[object]:
    return [c[1] for c in backend.calls if c[0] == "parse_support"]


def test_clusters_equal_but_for_names_are_parsed_once(tmp_path):
    backend = FakeBackend()
    hybrid = convert(blocks(4), TensorRTConfig(disable_ops=["Sin"]),
                     builder=TensorRTBuilder(backend, EngineCache(tmp_path)))
    assert _parsed(backend) == [["Relu", "Add", "Mul"]]
    assert [[n.name for n in e.subgraph.node] for e in hybrid.engines] == [
        [f"relu{k}", f"add{k}", f"mul{k}"] for k in range(4)]
    assert {e.status for e in hybrid.engines} == {"built"}


def test_a_verdict_with_reasons_is_asked_again_and_names_each_node(tmp_path):
    backend = FakeBackend(parser_rejects=["Mul"])
    hybrid = convert(blocks(3), TensorRTConfig(disable_ops=["Sin"], min_subgraph_size=1),
                     builder=TensorRTBuilder(backend, EngineCache(tmp_path)))
    assert _parsed(backend).count(["Relu", "Add", "Mul"]) == 3
    assert [d.name for d in hybrid.report().disagreements] == ["mul0", "mul1", "mul2"]


def test_every_cluster_is_parsed_while_tensorrt_logs_debug(tmp_path, caplog):
    backend = FakeBackend()
    with caplog.at_level(logging.DEBUG, logger="hybridtrt.tensorrt"):
        convert(blocks(3), TensorRTConfig(disable_ops=["Sin"]),
                builder=TensorRTBuilder(backend, EngineCache(tmp_path)))
    assert len(_parsed(backend)) == 3


def test_the_key_ignores_names_and_sees_everything_else():
    model = blocks(2)
    names = ["relu0", "add0", "mul0"]
    key = structure_key(cluster(model, names))
    assert key is not None and key == structure_key(cluster(model, names, rename="other_"))
    assert key != structure_key(cluster(blocks(2, scale=0.25), names))  # weight values
    assert key != structure_key(cluster(model, ["relu0", "add0"]))
    changed = cluster(model, names)
    changed.graph.node[2].input[1] = changed.graph.node[2].input[0]  # Mul(a, a): other wiring
    assert key != structure_key(changed)
    typed = cluster(model, names)
    typed.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    assert key != structure_key(typed)


def test_no_key_for_bodies_or_large_weights():
    body = h.make_graph([h.make_node("Identity", ["x"], ["y"])], "body", [], [f32("y", [1, 4])])
    branch = h.make_node("If", ["c"], ["z"], then_branch=body, else_branch=body)
    with_body = h.make_model(h.make_graph([branch], "g", [h.make_tensor_value_info(
        "c", onnx.TensorProto.BOOL, []), f32("x", [1, 4])], [f32("z", [1, 4])]))
    assert structure_key(with_body) is None
    large = blocks(1)
    large.graph.initializer[0].CopyFrom(numpy_helper.from_array(
        np.zeros((1, 1 << 19), np.float32), "w"))
    assert structure_key(large) is None
