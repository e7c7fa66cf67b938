"""convert() end to end on small models: structure, numbers, profiles, filters, report, files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest

import hybridtrt
from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.compiler import clustering, pipeline, shapes
from hybridtrt.core import partition
from hybridtrt.core.inline import inline_engines
from hybridtrt.core.partition import Partition
from hybridtrt.errors import FormatError, InternalError, SaveError
from hybridtrt.core.format import DOMAIN
from hybridtrt.runtime import Config, create_predictor
from tests import models
from tests.suites import ort_run

DYNAMIC = TensorRTConfig(
    inputs=[Input("x", min_input_shape=[1, 4], optim_input_shape=[2, 4], max_input_shape=[8, 4])],
    disable_ops=["Sin"],
)


def engine_nodes(hybrid: hybridtrt.HybridModel) -> list[list[str]]:
    return [[n.name for n in e.subgraph.node] for e in hybrid.engines]


def test_each_cluster_becomes_combine_engine_split_in_the_hybrid_domain() -> None:
    hybrid = convert(models.split_chain(), DYNAMIC)
    ops = [(n.domain, n.op_type) for n in hybrid.model.graph.node]
    assert ops == [
        (DOMAIN, "combine"), (DOMAIN, "tensorrt_engine"), (DOMAIN, "split"), ("", "Sin"),
        (DOMAIN, "combine"), (DOMAIN, "tensorrt_engine"), (DOMAIN, "split"),
    ]
    assert engine_nodes(hybrid) == [["relu1", "add1", "mul1"], ["relu2", "add2", "mul2"]]
    first, second = hybrid.engines
    assert first.input_names == ["x"] and first.output_names == ["c"]
    assert second.input_names == ["d", "c"] and second.output_names == ["y"]
    assert (DOMAIN, 1) in {(o.domain, o.version) for o in hybrid.model.opset_import}
    onnx.checker.check_model(hybrid.model, full_check=True)


def test_hybrid_model_computes_what_the_original_computes() -> None:
    original = models.split_chain()
    hybrid = convert(original, DYNAMIC)
    for batch in (1, 3, 8):
        feed = {"x": np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)}
        want = ort_run(original, feed)
        got = ort_run(inline_engines(hybrid.model), feed)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6)


def test_engine_subgraph_is_self_contained_and_runs_alone() -> None:
    hybrid = convert(models.split_chain(), DYNAMIC)
    second = hybrid.engines[1]
    assert [t.name for t in second.subgraph.initializer] == ["w"]
    sub = onnx.helper.make_model(second.subgraph, opset_imports=hybrid.model.opset_import[:1])
    sub.ir_version = 8
    onnx.checker.check_model(sub, full_check=True)
    d = np.full((2, 4), 0.5, np.float32)
    c = np.ones((2, 4), np.float32)
    (y,) = ort_run(sub, {"d": d, "c": c})
    np.testing.assert_allclose(y, (np.maximum(d, 0) + c) * (np.arange(4) / 4), rtol=1e-6)
    # "w" is used by both engines and nothing else: the main graph no longer holds it.
    assert [t.name for t in hybrid.model.graph.initializer] == []


def test_every_engine_input_gets_recorded_min_opt_max_per_profile() -> None:
    config = TensorRTConfig(
        inputs=[Input("x", min_input_shape=[1, 4], optim_input_shape=[2, 4], max_input_shape=[8, 4]),
                Input("x", min_input_shape=[9, 4], optim_input_shape=[16, 4], max_input_shape=[32, 4])],
        disable_ops=["Sin"],
    )
    hybrid = convert(models.split_chain(), config)
    second = hybrid.engines[1]
    assert second.profiles == (
        {"d": {"min": [1, 4], "opt": [2, 4], "max": [8, 4]},
         "c": {"min": [1, 4], "opt": [2, 4], "max": [8, 4]}},
        {"d": {"min": [9, 4], "opt": [16, 4], "max": [32, 4]},
         "c": {"min": [9, 4], "opt": [16, 4], "max": [32, 4]}},
    )
    dims = second.subgraph.input[0].type.tensor_type.shape.dim
    assert (dims[0].dim_param, dims[1].dim_value) == ("d_d0", 4)


def test_warmup_data_gives_the_profile_from_its_samples() -> None:
    samples = [np.zeros((n, 4), np.float32) for n in (2, 5, 3)]
    hybrid = convert(models.split_chain(), TensorRTConfig(inputs=[Input("x", warmup_data=samples)],
                                                          disable_ops=["Sin"]))
    assert hybrid.engines[0].profiles[0]["x"] == {"min": [2, 4], "opt": [5, 4], "max": [5, 4]}


def test_static_model_needs_no_warmup_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("ONNX Runtime must not run for a static model")

    monkeypatch.setattr(shapes, "recording_session", refuse)
    hybrid = convert(models.split_chain(batch=2), TensorRTConfig(inputs=[], disable_ops=["Sin"]))
    assert hybrid.engines[1].profiles == ({"d": {"min": [2, 4], "opt": [2, 4], "max": [2, 4]},
                                           "c": {"min": [2, 4], "opt": [2, 4], "max": [2, 4]}},)


def test_same_model_and_config_give_byte_identical_files(tmp_path: Path) -> None:
    first = convert(models.split_chain(), DYNAMIC).save(tmp_path / "a.onnx")
    second = convert(models.split_chain(), DYNAMIC).save(tmp_path / "b" / "a.onnx")
    assert first.read_bytes() == second.read_bytes()


def test_save_and_load_round_trip_keeps_engines_and_report(tmp_path: Path) -> None:
    hybrid = convert(models.split_chain(), DYNAMIC)
    path = hybrid.save(tmp_path)
    assert path == tmp_path / "model.onnx"
    back = hybridtrt.load(path)
    assert engine_nodes(back) == engine_nodes(hybrid)
    assert back.report() == hybrid.report()
    onnx.checker.check_model(str(path), full_check=True)


def test_save_model_dir_saves_during_convert(tmp_path: Path) -> None:
    config = TensorRTConfig(inputs=DYNAMIC.inputs, disable_ops=["Sin"], save_model_dir=tmp_path / "out")
    convert(models.split_chain(), config)
    assert len(hybridtrt.load(tmp_path / "out" / "model.onnx").engines) == 2


def test_external_data_keeps_weights_outside_and_loads_back(tmp_path: Path) -> None:
    wide = [Input("x", min_input_shape=[1, 512], optim_input_shape=[2, 512], max_input_shape=[8, 512])]
    hybrid = convert(models.split_chain(width=512), TensorRTConfig(inputs=wide, disable_ops=["Sin"]))
    path = hybrid.save(tmp_path / "m.onnx", external_data=True)
    (data,) = tmp_path.glob("m.onnx.*.data")
    assert data.stat().st_size == 2 * 512 * 4  # "w" in both engines
    stored = onnx.load(str(path), load_external_data=False)
    engine = next(n for n in stored.graph.node if n.op_type == "tensorrt_engine")
    weight = next(a.g for a in engine.attribute if a.name == "subgraph").initializer[0]
    assert weight.data_location == onnx.TensorProto.EXTERNAL and not weight.raw_data
    back = hybridtrt.load(path)
    assert back.engines[0].subgraph_sha256 == hybrid.engines[0].subgraph_sha256
    feed = {"x": np.ones((2, 512), np.float32)}
    np.testing.assert_allclose(ort_run(inline_engines(back.model), feed)[0],
                               ort_run(models.split_chain(width=512), feed)[0], rtol=1e-6)


def test_saving_with_external_data_leaves_the_model_in_memory_intact(tmp_path: Path) -> None:
    wide = [Input("x", min_input_shape=[1, 512], optim_input_shape=[2, 512], max_input_shape=[8, 512])]
    hybrid = convert(models.split_chain(width=512), TensorRTConfig(inputs=wide, disable_ops=["Sin"]))
    before = hybrid.model.SerializeToString()
    hybrid.save(tmp_path / "a.onnx", external_data=True)
    assert hybrid.model.SerializeToString() == before
    hybridtrt.load(hybrid.save(tmp_path / "b.onnx"))


def test_saving_again_replaces_the_data_file_and_removes_the_old_one(tmp_path: Path) -> None:
    wide = [Input("x", min_input_shape=[1, 512], optim_input_shape=[2, 512], max_input_shape=[8, 512])]
    first = convert(models.split_chain(width=512), TensorRTConfig(inputs=wide, disable_ops=["Sin"]))
    second = convert(models.split_chain(width=512), TensorRTConfig(inputs=wide, disable_ops=["Sin", "add2"]))
    first.save(tmp_path / "m.onnx", external_data=True)
    (old,) = tmp_path.glob("m.onnx.*.data")
    second.save(tmp_path / "m.onnx", external_data=True)
    (new,) = tmp_path.glob("m.onnx.*.data")
    assert new.name != old.name
    assert len(hybridtrt.load(tmp_path / "m.onnx").engines) == 1  # the second model, whole


def test_weights_inside_control_flow_bodies_survive_an_external_data_round_trip(tmp_path: Path) -> None:
    h = onnx.helper
    big = onnx.numpy_helper.from_array(np.arange(600, dtype=np.float32), "k")
    body = h.make_graph([h.make_node("Add", ["x", "k"], ["t"])], "then", [],
                        [models.f32("t", [600])], initializer=[big])
    other = h.make_graph([h.make_node("Identity", ["x"], ["e"])], "else", [], [models.f32("e", [600])])
    nodes = [h.make_node("Relu", ["x0"], ["x"]),
             h.make_node("If", ["cond"], ["y"], then_branch=body, else_branch=other)]
    model = models.make(nodes, [models.f32("x0", [600]),
                                h.make_tensor_value_info("cond", onnx.TensorProto.BOOL, [])],
                        [models.f32("y", [600])])
    config = TensorRTConfig(inputs=[Input("cond", warmup_data=[np.array(True)])], min_subgraph_size=1)
    hybrid = convert(model, config)
    assert [n.op_type for n in hybrid.engines[0].subgraph.node] == ["Relu", "If"]
    back = hybridtrt.load(hybrid.save(tmp_path / "m.onnx", external_data=True))
    assert back.engines[0].subgraph_sha256 == hybrid.engines[0].subgraph_sha256


def test_failed_save_leaves_no_file_and_keeps_the_old_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hybrid = convert(models.split_chain(), DYNAMIC)
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")

    def broken(model: onnx.ModelProto, path: str, **kwargs: object) -> None:
        with open(path, "wb") as half:
            half.write(b"half")
        raise OSError("disk full")

    def broken_bytes(path: Path, data: bytes) -> int:
        return broken(hybrid.model, str(path))  # type: ignore[func-returns-value]

    monkeypatch.setattr(onnx, "save_model", broken)
    monkeypatch.setattr(Path, "write_bytes", broken_bytes)  # save writes its own bytes
    with pytest.raises(SaveError, match="disk full"):
        hybrid.save(target)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_save_under_a_file_is_a_save_error_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SaveError, match=r"cannot write the hybrid model to .*file/m\.onnx"):
        convert(models.split_chain(), DYNAMIC).save(tmp_path / "file" / "m.onnx")


def test_load_rejects_a_modified_engine_subgraph(tmp_path: Path) -> None:
    path = convert(models.split_chain(), DYNAMIC).save(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    engine = next(n for n in model.graph.node if n.op_type == "tensorrt_engine")
    graph = next(a.g for a in engine.attribute if a.name == "subgraph")
    graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(np.zeros(4, np.float32), "w"))
    onnx.save(model, str(path))
    with pytest.raises(FormatError, match="tensorrt_engine_0.*does not match its checksum"):
        hybridtrt.load(path)


def test_load_rejects_a_newer_format_version(tmp_path: Path) -> None:
    path = convert(models.split_chain(), DYNAMIC).save(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "hybridtrt.format_version":
            prop.value = "99"
    onnx.save(model, str(path))
    with pytest.raises(FormatError, match="format version 99.*upgrade hybridtrt"):
        hybridtrt.load(path)


def test_load_of_a_plain_onnx_model_says_convert_first(tmp_path: Path) -> None:
    onnx.save(models.split_chain(), str(tmp_path / "plain.onnx"))
    with pytest.raises(FormatError, match="plain ONNX model.*convert it first"):
        hybridtrt.load(tmp_path / "plain.onnx")


def reasons(hybrid: hybridtrt.HybridModel) -> dict[str, str]:
    return {o.name: o.reason for o in hybrid.report().outside}


def test_disable_ops_takes_op_types_and_node_names_with_reasons() -> None:
    config = TensorRTConfig(inputs=DYNAMIC.inputs, disable_ops=["Sin", "add2"], min_subgraph_size=1)
    hybrid = convert(models.split_chain(), config)
    assert reasons(hybrid) == {"sin": "op type Sin is in disable_ops",
                               "add2": "node 'add2' is in disable_ops"}
    assert engine_nodes(hybrid) == [["relu1", "add1", "mul1"], ["relu2"], ["mul2"]]


def test_min_subgraph_size_leaves_small_clusters_in_onnx_runtime() -> None:
    config = TensorRTConfig(inputs=DYNAMIC.inputs, disable_ops=["Sin", "add2"], min_subgraph_size=2)
    hybrid = convert(models.split_chain(), config)
    assert engine_nodes(hybrid) == [["relu1", "add1", "mul1"]]
    assert reasons(hybrid)["mul2"] == "its cluster has 1 node(s) besides constants, fewer than min_subgraph_size=2"


def test_shape_tensor_producer_is_pulled_into_the_consuming_cluster() -> None:
    config = TensorRTConfig(
        inputs=[Input("x", min_input_shape=[1, 2, 3], optim_input_shape=[2, 2, 3],
                      max_input_shape=[4, 2, 3])],
        disable_ops=["Sin"], min_subgraph_size=1,
    )
    hybrid = convert(models.shape_pull_model(), config)
    assert engine_nodes(hybrid) == [["relu_a"], ["shape", "flatten", "reshape", "relu_y"]]
    assert reasons(hybrid) == {"sin": "op type Sin is in disable_ops"}


def test_shape_tensor_from_a_model_input_leaves_its_consumer_outside() -> None:
    config = TensorRTConfig(inputs=[Input("shape", warmup_data=[np.array([3, 2])])],
                            min_subgraph_size=1)
    hybrid = convert(models.reshape_by_input_model(), config)
    assert engine_nodes(hybrid) == [["relu_a"], ["relu_y"]]
    assert reasons(hybrid) == {"reshape": "reads a shape tensor computed outside TensorRT"}


def test_shape_values_read_outside_are_computed_there_too_not_exported(tmp_path: Path) -> None:
    config = TensorRTConfig(inputs=[Input("x", [1, 6], [2, 6], [4, 6])],
                            disable_ops=["ConstantOfShape"], min_subgraph_size=1)
    model = models.shared_shape_model()
    hybrid = convert(model, config)
    engine, = hybrid.engines
    assert [n.name for n in engine.subgraph.node] == [
        "shape", "index0", "batch", "rest", "target", "relu_a", "reshape", "relu_y"]
    assert engine.output_names == ["y"]  # no shape tensor leaves the engine
    ops = [n.op_type if n.domain != DOMAIN else "engine" for n in hybrid.model.graph.node
           if n.domain != DOMAIN or n.op_type == "tensorrt_engine"]
    assert ops == ["engine", "Shape", "Constant", "Gather", "Constant", "Concat", "ConstantOfShape"]
    onnx.checker.check_model(hybrid.model)
    plain = inline_engines(hybrid.model)
    assert sorted(n.name for n in plain.graph.node) == sorted(n.name for n in model.graph.node)
    onnx.checker.check_model(plain)
    x = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    want = ort_run(model, {"x": x})
    path = hybrid.save(tmp_path / "m.onnx")
    for isolated in (False, True):
        runtime_config = Config(path)
        runtime_config.isolate_engines(isolated)
        got = create_predictor(runtime_config).run_dict({"x": x})
        np.testing.assert_allclose(got["y"], want[0], rtol=1e-6)
        np.testing.assert_array_equal(got["z"], want[1])


@pytest.mark.parametrize("mode", ["fp32", "fp16"])
@pytest.mark.parametrize("as_initializers", [False, True])
def test_shared_shape_values_inline_and_run_in_every_precision(tmp_path: Path, mode: str,
                                                               as_initializers: bool) -> None:
    model = models.shared_shape_model()
    if as_initializers:  # the same constants as initializers instead of Constant nodes
        constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
        kept = [n for n in model.graph.node if n.op_type != "Constant"]
        del model.graph.node[:]
        model.graph.node.extend(kept)
        model.graph.initializer.extend(
            onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(n.attribute[0].t), name)
            for name, n in constants.items())
    hybrid = convert(model, TensorRTConfig(inputs=[Input("x", [1, 6], [2, 6], [4, 6])],
                                           disable_ops=["ConstantOfShape"], min_subgraph_size=1,
                                           precision_mode=mode))
    assert [e.output_names for e in hybrid.engines] == [["y"]]
    plain = inline_engines(hybrid.model)
    onnx.checker.check_model(plain)
    x = np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)
    want = ort_run(model, {"x": x})
    np.testing.assert_array_equal(ort_run(plain, {"x": x})[1], want[1])
    path = hybrid.save(tmp_path / "m.onnx")
    for isolated in (False, True):
        runtime_config = Config(path)
        runtime_config.isolate_engines(isolated)
        got = create_predictor(runtime_config).run_dict({"x": x})
        np.testing.assert_allclose(got["y"], want[0], rtol=1e-2, atol=1e-3)
        np.testing.assert_array_equal(got["z"], want[1])


def test_clusters_of_only_shape_or_identity_work_stay_in_onnx_runtime() -> None:
    h = onnx.helper
    nodes = [h.make_node("Identity", ["x"], ["a"], name="id1"),
             h.make_node("Identity", ["a"], ["b"], name="id2"),
             h.make_node("Sin", ["b"], ["y"], name="sin")]
    model = models.make(nodes, [models.f32("x", [2])], [models.f32("y", [2])])
    hybrid = convert(model, TensorRTConfig(disable_ops=["Sin"], min_subgraph_size=1))
    assert hybrid.engines == ()
    assert reasons(hybrid)["id1"] == "its cluster does only shape, identity or constant work"


def test_a_cluster_that_would_form_a_cycle_is_caught_before_rewriting(monkeypatch: pytest.MonkeyPatch) -> None:
    def bad(graph: partition.DependencyGraph, supported: list[bool]) -> list[Partition]:
        return [Partition((0, 4))]  # relu1 .. relu2 around the disabled sin: leaves and re-enters

    monkeypatch.setattr(clustering, "propose", bad)
    with pytest.raises(InternalError, match="partition: clusters \\[0\\] would form a cycle"):
        convert(models.split_chain(), DYNAMIC)


def test_report_table_and_json_agree() -> None:
    report = convert(models.split_chain(), DYNAMIC).report()
    text = report.render()
    assert "nodes: 7, in TensorRT: 6 (85.7%), engines: 2" in text
    assert re.search(r"^Sin +1 +0 +op type Sin is in disable_ops$", text, re.MULTILINE)
    assert "in  x float32 1x4 / 2x4 / 8x4" in text
    data = json.loads(report.to_json())
    assert data["nodes_in_tensorrt"] == 6
    assert [e["status"] for e in data["engines"]] == ["not_built", "not_built"]
    assert data["engines"][1]["inputs"][0]["profiles"] == [{"min": [1, 4], "opt": [2, 4], "max": [8, 4]}]


def test_cluster_with_a_fake_rule_set_where_only_add_is_supported() -> None:
    from hybridtrt.core.loading import load_model
    from hybridtrt.converters.registry import OpRule, Registry

    only_add = Registry()
    only_add.register(OpRule("Add"))
    h = onnx.helper
    nodes = [h.make_node("Add", ["x", "x"], ["a"], name="add1"),
             h.make_node("Add", ["a", "x"], ["b"], name="add2"),
             h.make_node("Relu", ["a"], ["r"], name="relu"),
             h.make_node("Add", ["b", "r"], ["y"], name="add3")]
    model = models.make(nodes, [models.f32("x", [2])], [models.f32("y", [2])])
    result = pipeline.cluster(load_model(model), TensorRTConfig(min_subgraph_size=1), only_add)
    names = [[result.index.nodes[n].name for n in p.nodes] for p in result.parts]
    # add3 reads relu, which reads add1: add3 cannot join add1/add2 without a cycle.
    assert names == [["add1", "add2"], ["add3"]]
    assert [(o.name, o.reason) for o in result.outside] == [
        ("relu", "TensorRT has no converter for Relu")]


def _two_clusters_sharing(constant: onnx.NodeProto) -> onnx.ModelProto:
    h = onnx.helper
    nodes = [constant,
             h.make_node("Add", ["x", "c"], ["a"], name="add_a"),
             h.make_node("Sin", ["a"], ["b"], name="sin"),
             h.make_node("Add", ["b", "c"], ["y"], name="add_y")]
    return models.make(nodes, [models.f32("x", [3])], [models.f32("y", [3])])


def test_a_value_float_constant_copied_into_an_engine_stays_float32() -> None:
    constant = onnx.helper.make_node("Constant", [], ["c"], name="const", value_floats=[1.0, 2.0, 3.0])
    hybrid = convert(_two_clusters_sharing(constant),
                     TensorRTConfig(disable_ops=["Sin"], min_subgraph_size=1))
    copied = hybrid.engines[1].subgraph.initializer[0]
    assert (copied.name, copied.data_type) == ("c", onnx.TensorProto.FLOAT)
    feed = {"x": np.array([1, -2, 3], np.float32)}
    np.testing.assert_allclose(ort_run(inline_engines(hybrid.model), feed)[0],
                               ort_run(_two_clusters_sharing(constant), feed)[0])


def test_a_sparse_constant_becomes_an_engine_input_instead_of_a_copy() -> None:
    sparse = onnx.helper.make_sparse_tensor(
        onnx.numpy_helper.from_array(np.array([5.0], np.float32), "v"),
        onnx.numpy_helper.from_array(np.array([1], np.int64), "i"), [3])
    constant = onnx.helper.make_node("Constant", [], ["c"], name="const", sparse_value=sparse)
    hybrid = convert(_two_clusters_sharing(constant),
                     TensorRTConfig(disable_ops=["Sin", "Constant"], min_subgraph_size=1))
    assert hybrid.engines[1].input_names == ["b", "c"]


def test_engine_names_avoid_existing_tensor_names() -> None:
    h = onnx.helper
    nodes = [h.make_node("Relu", ["x"], ["tensorrt_engine_0__outputs"], name="r"),
             h.make_node("Sin", ["tensorrt_engine_0__outputs"], ["y"], name="sin")]
    model = models.make(nodes, [models.f32("x", [3])], [models.f32("y", [3])])
    hybrid = convert(model, TensorRTConfig(disable_ops=["Sin"], min_subgraph_size=1))
    assert hybrid.engines[0].name == "tensorrt_engine_0_"
    onnx.checker.check_model(hybrid.model, full_check=True)


def test_clusters_whose_results_nobody_uses_are_not_engines() -> None:
    h = onnx.helper
    nodes = [h.make_node("Relu", ["x"], ["dead1"], name="dead_relu"),
             h.make_node("Sigmoid", ["dead1"], ["dead2"], name="dead_sigmoid"),
             h.make_node("Sin", ["x"], ["y"], name="sin")]
    model = models.make(nodes, [models.f32("x", [3])], [models.f32("y", [3])])
    hybrid = convert(model, TensorRTConfig(disable_ops=["Sin"], min_subgraph_size=1))
    assert hybrid.engines == ()
    assert reasons(hybrid)["dead_relu"] == "its cluster computes nothing the model uses"


def test_an_overridable_initializer_stays_a_model_input() -> None:
    h = onnx.helper
    w = onnx.numpy_helper.from_array(np.ones(3, np.float32), "w")
    nodes = [h.make_node("Add", ["x", "w"], ["a"], name="add"),
             h.make_node("Relu", ["a"], ["y"], name="relu")]
    graph = h.make_graph(nodes, "g", [models.f32("x", [3]), models.f32("w", [3])],
                         [models.f32("y", [3])], initializer=[w])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    hybrid = convert(model, TensorRTConfig(min_subgraph_size=1))
    assert hybrid.engines[0].input_names == ["x", "w"]
    assert [v.name for v in hybrid.model.graph.input] == ["x", "w"]
    feed = {"x": np.zeros(3, np.float32), "w": np.full(3, 0.5, np.float32)}
    np.testing.assert_allclose(ort_run(inline_engines(hybrid.model), feed)[0], [0.5, 0.5, 0.5])


def test_constant_nodes_do_not_count_towards_min_subgraph_size() -> None:
    h = onnx.helper
    nodes = [h.make_node("Constant", [], ["k1"], name="k1", value_floats=[1.0]),
             h.make_node("Constant", [], ["k2"], name="k2", value_floats=[2.0]),
             h.make_node("Add", ["x", "k1"], ["a"], name="add"),
             h.make_node("Mul", ["a", "k2"], ["y"], name="mul")]
    model = models.make(nodes, [models.f32("x", [1])], [models.f32("y", [1])])
    assert convert(model, TensorRTConfig(min_subgraph_size=3)).engines == ()
    assert len(convert(model, TensorRTConfig(min_subgraph_size=2)).engines) == 1
