"""Precision written into the clusters: FP16/BF16 casts, FP32 guards, Q/DQ pairs, INT8 calibration."""

from __future__ import annotations

import logging
import re

import numpy as np
import onnx
import onnx.helper as h
import onnxruntime as ort
import pytest
from onnx import TensorProto, numpy_helper

from hybridtrt import AccuracyError, Input, TensorRTConfig, convert
from hybridtrt.compiler.filters import keep_qdq_pairs
from hybridtrt.core.inline import inline_engines
from hybridtrt.core.partition import Partition
from hybridtrt.errors import ConfigError, InputError
from hybridtrt.runtime import Config, create_predictor
from tests.models import conv_classifier, f32, make, split_chain

CHAIN_INPUT = Input(name="x", min_input_shape=(1, 4), optim_input_shape=(2, 4), max_input_shape=(4, 4))


def _run_hybrid(hybrid, tmp_path, feed):
    path = hybrid.save(tmp_path / "model.hybrid.onnx")
    return list(create_predictor(Config(path)).run_dict(feed).values())


def _ort(model, feed):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)


def _types(graph):
    inferred = onnx.shape_inference.infer_shapes(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]))
    types = {v.name: v.type.tensor_type.elem_type for v in (*inferred.graph.value_info, *graph.input, *graph.output)}
    return types | {t.name: t.data_type for t in graph.initializer}


def test_fp16_casts_sit_only_at_cluster_edges_and_ort_nodes_stay_fp32(tmp_path):
    model = split_chain()
    hybrid = convert(model, TensorRTConfig(inputs=[CHAIN_INPUT], disable_ops=["Sin"],
                                           precision_mode="fp16"))
    assert len(hybrid.engines) == 2
    for record in hybrid.engines:
        graph = record.subgraph
        assert {v.type.tensor_type.elem_type for v in (*graph.input, *graph.output)} == {TensorProto.FLOAT}
        casts = [n for n in graph.node if n.op_type == "Cast"]
        boundary = {v.name for v in (*graph.input, *graph.output)}
        assert casts and all(set(n.input) & boundary or set(n.output) & boundary for n in casts)
        types = _types(graph)
        inner = [o for n in graph.node if n.op_type != "Cast" for o in n.output]
        assert inner and all(types[o] == TensorProto.FLOAT16 for o in inner)
        assert record.precision["mode"] == "fp16"
    outside = [n for n in hybrid.model.graph.node if n.domain != "hybridtrt"]
    assert [n.op_type for n in outside] == ["Sin"]  # no cast added to the ORT part
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4)).astype(np.float32)
    got, = _run_hybrid(hybrid, tmp_path, {"x": x})
    want, = _ort(model, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-3)
    assert not np.array_equal(got, want)  # it did compute in FP16


def test_ops_run_float_by_type_and_name_is_reported(tmp_path):
    hybrid = convert(split_chain(), TensorRTConfig(inputs=[CHAIN_INPUT], disable_ops=["Sin"],
                                                   precision_mode="fp16", ops_run_float=["Relu", "mul2"]))
    report = hybrid.report()
    kept = {name: why for e in report.engines for name, _, why in e.fp32_nodes}
    assert kept == {"relu1": "listed in ops_run_float", "relu2": "listed in ops_run_float",
                    "mul2": "listed in ops_run_float"}
    assert "kept in FP32 (2):" in report.render() and "mul2 (Mul): listed in ops_run_float" in report.render()
    second = hybrid.engines[1].subgraph
    types = _types(second)
    mul2 = next(n for n in second.node if n.name == "mul2")
    assert all(types[i] == TensorProto.FLOAT for i in mul2.input)


def _scaled_model(factor: float) -> onnx.ModelProto:
    nodes = [h.make_node("Mul", ["x", "k"], ["a"], name="scale"),
             h.make_node("Add", ["a", "x"], ["b"], name="add"),
             h.make_node("Relu", ["b"], ["y"], name="relu")]
    k = numpy_helper.from_array(np.array(factor, np.float32), "k")
    return make(nodes, [f32("x", [1, 8])], [f32("y", [1, 8])], [k])


def test_guard_keeps_nodes_whose_warmup_activations_pass_fp16_safe_range():
    samples = [np.full((1, 8), 30.0, np.float32)]
    config = TensorRTConfig(inputs=[Input(name="x", warmup_data=samples)], precision_mode="fp16",
                            min_subgraph_size=1)
    kept = convert(_scaled_model(1000.0), config).report().engines[0].fp32_nodes
    assert [k[0] for k in kept] == ["scale", "add", "relu"]
    assert "reached 3e+04 in the warm-up runs, beyond FP16's safe range (16384)" in kept[0][2]
    small = convert(_scaled_model(2.0), config).report().engines[0].fp32_nodes
    assert small == ()
    unguarded = TensorRTConfig(inputs=[Input(name="x", warmup_data=samples)], precision_mode="fp16",
                               min_subgraph_size=1, precision_guard=False)
    assert convert(_scaled_model(1000.0), unguarded).report().engines[0].fp32_nodes == ()


def test_weights_beyond_fp16_keep_their_node_fp32_or_are_clamped(tmp_path, caplog):
    model = _scaled_model(1e6)
    # the weight rule alone: random warm-up inputs overflow 'a', which the accuracy guard would catch
    config = TensorRTConfig(precision_mode="fp16", min_subgraph_size=1, precision_guard=False,
                            accuracy_check=False)
    hybrid = convert(model, config)
    kept = hybrid.report().engines[0].fp32_nodes
    assert kept == (("scale", "Mul", "weight 'k' reaches 1e+06, beyond FP16's range (65504)"),)
    x = np.full((1, 8), 1e-3, np.float32)
    np.testing.assert_allclose(_run_hybrid(hybrid, tmp_path, {"x": x})[0], _ort(model, {"x": x})[0],
                               rtol=1e-2)
    with caplog.at_level(logging.WARNING, logger="hybridtrt"):
        clamped = convert(model, TensorRTConfig(precision_mode="fp16", min_subgraph_size=1,
                                                precision_guard=False, clamp_fp16_weights=True))
    assert clamped.engines[0].precision["clamped_weights"] == ["k"]
    assert "clamping weight(s) beyond FP16's range to +-65504: 'k'" in caplog.text


def test_bf16_graph_holds_bf16_weights_and_runs_emulated_in_ort(tmp_path):
    model = split_chain()
    hybrid = convert(model, TensorRTConfig(inputs=[CHAIN_INPUT], disable_ops=["Sin"],
                                           precision_mode="bf16"))
    graph = hybrid.engines[1].subgraph
    assert TensorProto.BFLOAT16 in {t.data_type for t in graph.initializer}
    assert any(a.name == "to" and a.i == TensorProto.BFLOAT16 for n in graph.node for a in n.attribute)
    x = np.random.default_rng(1).uniform(-1, 1, (3, 4)).astype(np.float32)
    got, = _run_hybrid(hybrid, tmp_path, {"x": x})
    want, = _ort(model, {"x": x})
    np.testing.assert_allclose(got, want, rtol=3e-2, atol=1e-2)
    assert np.abs(got - want).max() > 1e-5  # the BF16 rounding is really applied


def test_same_model_and_config_give_identical_fp16_bytes():
    config = TensorRTConfig(inputs=[CHAIN_INPUT], disable_ops=["Sin"], precision_mode="fp16")
    first = convert(split_chain(), config).model.SerializeToString(deterministic=True)
    assert convert(split_chain(), config).model.SerializeToString(deterministic=True) == first


def _qdq_model() -> onnx.ModelProto:
    """x -> Relu -> Q -> DQ -> Add(w) -> Sigmoid -> y (symmetric int8)."""
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, np.int8), "z")
    w = numpy_helper.from_array(np.ones(4, np.float32), "w")
    nodes = [h.make_node("Relu", ["x"], ["r"], name="relu"),
             h.make_node("QuantizeLinear", ["r", "s", "z"], ["q"], name="q"),
             h.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"], name="dq"),
             h.make_node("Add", ["dq", "w"], ["a"], name="add"),
             h.make_node("Sigmoid", ["a"], ["y"], name="sigmoid")]
    return make(nodes, [f32("x", [2, 4])], [f32("y", [2, 4])], [scale, zero, w])


def test_a_q_dq_pair_is_never_split_by_a_cluster_boundary():
    hybrid = convert(_qdq_model(), TensorRTConfig(min_subgraph_size=1, disable_ops=["dq"]))
    inside = {n.name for r in hybrid.engines for n in r.subgraph.node}
    assert "q" not in inside and "dq" not in inside
    outside = {o.name: o.reason for o in hybrid.report().outside}
    assert outside["q"] == ("its QuantizeLinear/DequantizeLinear partner runs outside TensorRT "
                            "(a Q/DQ pair is never split)")
    whole = convert(_qdq_model(), TensorRTConfig(min_subgraph_size=1, precision_mode="int8"))
    assert [n.name for n in whole.engines[0].subgraph.node] == ["relu", "q", "dq", "add", "sigmoid"]
    assert whole.engines[0].precision["quantization"] == "Q/DQ nodes of the model"


def test_keep_qdq_pairs_splits_the_cluster_around_the_removed_member():
    from hybridtrt.core.graph import GraphIndex
    from hybridtrt.compiler.facts import cluster_facts
    from hybridtrt.compiler.capability import judge_graph
    from hybridtrt.converters.registry import REGISTRY

    model = _qdq_model()
    index = GraphIndex(model, onnx.shape_inference.infer_shapes(model))
    facts = cluster_facts(index, index.deps, judge_graph(index, REGISTRY, ()).supported, REGISTRY)
    parts = keep_qdq_pairs([Partition((0, 1)), Partition((2, 3, 4))], facts)
    assert parts == [Partition((0,)), Partition((3, 4))]


def _cnn() -> onnx.ModelProto:
    return conv_classifier(8, 16)


def _feeds(count, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(0, 1, (1, 3, 16, 16)).astype(np.float32)} for _ in range(count)]


def test_int8_calibration_inserts_trt_style_qdq_and_stays_close(tmp_path):
    model = _cnn()
    hybrid = convert(model, TensorRTConfig(precision_mode="int8", calibration_data=_feeds(8),
                                           calibration_method="minmax", inputs=[Input(
                                               "x", warmup_data=[f["x"] for f in _feeds(3)])]))
    assert hybrid.report().engines[0].accuracy_demoted == ()  # within the guard's tolerance
    graph = hybrid.engines[0].subgraph
    onnx.checker.check_graph(graph)  # Q/DQ nodes in topological order, as TensorRT reads them
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") == 2  # the inputs of conv and fc, one pair each
    assert all(numpy_helper.to_array(t).dtype == np.int8 for t in graph.initializer if "zero_point" in t.name)
    weight_dq = [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("w_quantized")]
    assert weight_dq and any(a.name == "axis" for a in weight_dq[0].attribute)  # per channel
    assert hybrid.engines[0].precision["quantization"] == "minmax ranges from 8 calibration samples"
    feed = _feeds(1, seed=9)[0]
    got, = _run_hybrid(hybrid, tmp_path, feed)
    want, = _ort(model, feed)
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()
    assert not np.array_equal(got, want)


def test_calibration_cache_is_reused_and_invalidated_when_the_model_changes(tmp_path, caplog):
    cache = tmp_path / "calib.json"

    def untouchable():
        raise AssertionError("calibration ran although the cache matches")
        yield  # pragma: no cover

    first = convert(_cnn(), TensorRTConfig(precision_mode="int8", calibration_data=_feeds(4),
                                           calibration_cache=cache))
    assert cache.is_file()
    with caplog.at_level(logging.INFO, logger="hybridtrt"):
        again = convert(_cnn(), TensorRTConfig(precision_mode="int8", calibration_data=untouchable(),
                                               calibration_cache=cache))
    assert "ranges read from" in caplog.text
    assert again.engines[0].precision["quantization"] == "percentile ranges from calibration cache"
    assert again.engines[0].subgraph_sha256 == first.engines[0].subgraph_sha256
    changed = _cnn()
    changed.graph.initializer[0].CopyFrom(numpy_helper.from_array(
        numpy_helper.to_array(changed.graph.initializer[0]) * 2, "w"))
    consumed = []
    data = (consumed.append(f) or f for f in _feeds(3))
    convert(changed, TensorRTConfig(precision_mode="int8", calibration_data=data, calibration_cache=cache))
    assert len(consumed) == 3  # a new model calibrates again


def test_int8_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="precision_mode INT8 needs calibration_data"):
        convert(_cnn(), TensorRTConfig(precision_mode="int8"))
    with pytest.raises(InputError, match="gave no samples"):
        convert(_cnn(), TensorRTConfig(precision_mode="int8", calibration_data=iter([])))
    with pytest.raises(InputError, match=r"sample 0 does not match the model's inputs \['x'\]: "
                                         r"missing \['x'\], unknown \['image'\]"):
        convert(_cnn(), TensorRTConfig(precision_mode="int8",
                                       calibration_data=[{"image": np.zeros((1, 3, 16, 16), np.float32)}]))
    with pytest.raises(InputError, match=r"sample 1: input 'x' has shape \[1, 3, 8, 8\], the model "
                                         r"expects \[1, 3, 16, 16\]"):
        convert(_cnn(), TensorRTConfig(precision_mode="int8", calibration_data=[
            _feeds(1)[0], {"x": np.zeros((1, 3, 8, 8), np.float32)}]))
    with pytest.raises(ConfigError, match="calibration_method must be one of"):
        TensorRTConfig(calibration_method="kl")
    with pytest.raises(ConfigError, match="holds no .npz or .npy files"):
        convert(_cnn(), TensorRTConfig(precision_mode="int8", calibration_data=str(tmp_path)))


def test_calibration_reads_a_directory_of_npy_files(tmp_path):
    for k, feed in enumerate(_feeds(3)):
        np.save(tmp_path / f"{k}.npy", feed["x"])
    hybrid = convert(_cnn(), TensorRTConfig(precision_mode="int8", calibration_data=str(tmp_path)))
    assert hybrid.engines[0].precision["quantization"] == "percentile ranges from 3 calibration samples"


def test_guard_rules_name_each_fragile_node_and_bf16_skips_the_range_rules():
    from hybridtrt.compiler.precision.guards import TensorStats, fp32_nodes
    from hybridtrt.config import PrecisionMode

    nodes = [h.make_node("Softmax", ["logits"], ["p"], name="long_softmax", axis=-1),
             h.make_node("Softmax", ["small"], ["q"], name="short_softmax", axis=-1),
             h.make_node("ReduceMean", ["big"], ["m"], name="mean", keepdims=0),
             h.make_node("LayerNormalization", ["t", "g"], ["n"], name="ln"),
             h.make_node("Pow", ["t", "two"], ["sq"], name="pow"),
             h.make_node("Relu", ["t"], ["r"], name="relu")]
    stats = {"logits": TensorStats(1.0, (1, 40, 6625)), "small": TensorStats(1.0, (1, 40, 16)),
             "big": TensorStats(1.0, (1, 8192)), "m": TensorStats(1.0, (1,)),
             "r": TensorStats(2e4, (1, 8))}
    fp16 = fp32_nodes(nodes, PrecisionMode.FP16, (), True, stats)
    assert fp16 == {
        "long_softmax": "Softmax over 6625 elements (>= 1024) loses precision in FP16",
        "mean": "reduces 8192 elements per output (> 4096) in FP16",
        "ln": "normalization: mean and variance lose precision in FP16",
        "pow": "Pow overflows FP16 easily (x^2 past |x| = 256)",
        "relu": "output 'r' reached 2e+04 in the warm-up runs, beyond FP16's safe range (16384)",
    }
    bf16 = fp32_nodes(nodes, PrecisionMode.BF16, (), True, stats)
    assert set(bf16) == {"long_softmax", "mean", "ln"}
    assert fp32_nodes(nodes, PrecisionMode.FP16, ("relu",), False, stats) == {
        "relu": "listed in ops_run_float"}


def _outlier_cnn() -> onnx.ModelProto:
    """conv1 -> relu -> conv2: one channel of conv1's output is 1000x the others, so conv2's
    per-tensor input scale flattens the rest: quantizing conv2 hurts far more than conv1."""
    rng = np.random.default_rng(1)
    w1 = rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    w1[0] *= 1000.0
    w2 = rng.normal(0, 0.3, (4, 8, 3, 3)).astype(np.float32)
    w2[:, 0] /= 1000.0
    nodes = [h.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             h.make_node("Conv", ["r1", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1])]
    weights = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")]
    return make(nodes, [f32("x", [1, 3, 16, 16])], [f32("y", [1, 4, 16, 16])], weights)


def test_int8_sensitivity_keeps_the_layer_quantization_hurts_most_in_fp32(tmp_path):
    model = _outlier_cnn()
    config = dict(precision_mode="int8", calibration_method="minmax", min_subgraph_size=1)
    plain = convert(model, TensorRTConfig(calibration_data=_feeds(8), accuracy_check=False,
                                          **config))
    mixed = convert(model, TensorRTConfig(calibration_data=_feeds(8), int8_fp32_layers=1,
                                          accuracy_check=False, **config))
    kept = mixed.engines[0].precision["fp32_nodes"]
    assert [k[:2] for k in kept] == [["conv2", "Conv"]]
    assert re.fullmatch(r"int8 sensitivity: quantized alone it moves the engine's outputs by "
                        r"\S+ \(relative L2\), rank 1 of 2", kept[0][2])
    assert "conv2 (Conv): int8 sensitivity" in mixed.report().render()
    feed = _feeds(1, seed=9)[0]
    want, = _ort(model, feed)
    errors = [np.linalg.norm(_run_hybrid(h_, tmp_path / name, feed)[0] - want)
              for h_, name in ((plain, "plain"), (mixed, "mixed"))]
    assert errors[1] < errors[0] / 3  # keeping conv2 in FP32 removes most of the error
    assert mixed.engines[0].build_settings["int8_fp32_layers"] == 1


def test_int8_guard_keeps_the_costliest_layers_fp32_without_int8_fp32_layers(tmp_path):
    model = _outlier_cnn()
    config = dict(precision_mode="int8", calibration_method="minmax", min_subgraph_size=1,
                  calibration_data=_feeds(8),
                  inputs=[Input("x", warmup_data=[f["x"] for f in _feeds(3, seed=5)])])
    engine = convert(model, TensorRTConfig(**config)).report().engines[0]
    assert [d[:3] for d in engine.accuracy_demoted] == [("conv2", "Conv", "y")]
    assert engine.accuracy_before[0]["rel_l2"] > 0.2 >= engine.accuracy_after[0]["rel_l2"]
    kept = {name: why for name, _, why in engine.fp32_nodes}
    assert list(kept) == ["conv2"]  # conv1 stays int8
    assert "sorted by the error their quantization alone causes" in kept["conv2"]
    with pytest.raises(AccuracyError, match=r"engine tensorrt_engine_0: output 'y' errs by 1 "
                                            r"\(relative L2.*beyond accuracy_tolerance 0.2"):
        convert(model, TensorRTConfig(strict_accuracy=True, **config))
    loose = convert(model, TensorRTConfig(accuracy_tolerance=2.0, **config)).report().engines[0]
    assert loose.accuracy_demoted == () and loose.fp32_nodes == ()


def test_int8_sensitivity_after_a_cache_hit_reads_the_data_again_or_says_it_needs_it(tmp_path):
    cache = tmp_path / "calib.json"
    settings = dict(precision_mode="int8", calibration_cache=cache, min_subgraph_size=1,
                    int8_fp32_layers=1)
    convert(_outlier_cnn(), TensorRTConfig(calibration_data=_feeds(4), **settings))
    again = convert(_outlier_cnn(), TensorRTConfig(calibration_data=_feeds(4), **settings))
    assert again.engines[0].precision["quantization"] == "percentile ranges from calibration cache"
    assert [k[0] for k in again.engines[0].precision["fp32_nodes"]] == ["conv2"]
    with pytest.raises(ConfigError, match="int8_fp32_layers needs calibration_data to measure"):
        convert(_outlier_cnn(), TensorRTConfig(**settings))
    with pytest.raises(ConfigError, match="int8_fp32_layers must be an integer >= 0, got -1"):
        TensorRTConfig(int8_fp32_layers=-1)


def test_a_16_bit_tensor_read_by_two_fp32_nodes_gets_one_cast(tmp_path):
    # ONNX Runtime's float16 converter casts it twice under one name: an invalid graph
    nodes = [h.make_node("Relu", ["x"], ["a"], name="relu"),
             h.make_node("Sin", ["a"], ["b"], name="sin"),
             h.make_node("Cos", ["a"], ["c"], name="cos"),
             h.make_node("Add", ["b", "c"], ["y"], name="add")]
    model = make(nodes, [f32("x", [2, 8])], [f32("y", [2, 8])])
    hybrid = convert(model, TensorRTConfig(precision_mode="fp16", ops_run_float=["Sin", "Cos"],
                                           min_subgraph_size=1))
    graph = hybrid.engines[0].subgraph
    casts = [n for n in graph.node if n.op_type == "Cast" and n.input[0] == "a"]
    assert len(casts) == 1
    onnx.checker.check_graph(graph)
    feed = {"x": np.linspace(-2, 2, 16, dtype=np.float32).reshape(2, 8)}
    got, = _run_hybrid(hybrid, tmp_path, feed)
    np.testing.assert_allclose(got, _ort(model, feed)[0], atol=2e-3)


def test_ops_run_float_names_survive_layer_folding_and_unknown_ones_are_warned(caplog):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 1, (8, 8)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 1, (8,)).astype(np.float32), "b")
    nodes = [h.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             h.make_node("Add", ["m", "b"], ["a"], name="bias"),
             h.make_node("Relu", ["a"], ["y"], name="relu")]
    model = make(nodes, [f32("x", [2, 8])], [f32("y", [2, 8])], [w, b])
    with caplog.at_level(logging.WARNING, logger="hybridtrt"):
        hybrid = convert(model, TensorRTConfig(precision_mode="fp16", min_subgraph_size=1,
                                               ops_run_float=["mm", "mmm"]))
    kept = hybrid.engines[0].precision["fp32_nodes"]
    assert [(k[0].split("/")[0], k[2]) for k in kept] == [("mm", "listed in ops_run_float")]
    assert "ops_run_float: 'mmm' name no node and no op type of this model" in caplog.text


def test_a_float_constant_read_inside_and_outside_an_fp16_engine(tmp_path):
    nodes = [h.make_node("Constant", [], ["c"], name="const",
                         value=numpy_helper.from_array(np.full((2, 4), 0.3, np.float32))),
             h.make_node("Relu", ["x"], ["a"], name="relu0"),
             h.make_node("Mul", ["a", "c"], ["b"], name="mul"),
             h.make_node("Relu", ["b"], ["y"], name="relu1"),
             h.make_node("Sin", ["c"], ["s"], name="sin"),
             h.make_node("Add", ["s", "x"], ["z"], name="add")]
    model = make(nodes, [f32("x", [2, 4])], [f32("y", [2, 4]), f32("z", [2, 4])])
    hybrid = convert(model, TensorRTConfig(precision_mode="fp16", disable_ops=["Sin"],
                                           min_subgraph_size=1))
    assert "c" not in hybrid.engines[0].output_names  # the constant stays outside too
    plain = inline_engines(hybrid.model)
    onnx.checker.check_model(plain)
    feed = {"x": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)}
    want = _ort(model, feed)
    for got in (_ort(plain, feed), _run_hybrid(hybrid, tmp_path, feed)):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, atol=2e-3)


@pytest.mark.parametrize("mode", ["fp16", "int8"])
def test_an_engine_output_that_layer_folding_makes_a_weight_stays_connected(tmp_path, mode):
    # Add of two constants folds into a weight that is the engine's output
    c1 = numpy_helper.from_array(np.full((4, 4), 0.25, np.float32), "c1")
    c2 = numpy_helper.from_array(np.eye(4, dtype=np.float32), "c2")
    nodes = [h.make_node("Add", ["c1", "c2"], ["k"], name="fold"),
             h.make_node("MatMul", ["x", "k"], ["y"], name="matmul"),
             h.make_node("Sin", ["k"], ["z"], name="sin")]
    model = make(nodes, [f32("x", [2, 4])], [f32("y", [2, 4]), f32("z", [4, 4])], [c1, c2])
    data = [{"x": np.full((2, 4), v, np.float32)} for v in (1.0, 2.0, 3.0)]
    hybrid = convert(model, TensorRTConfig(precision_mode=mode, disable_ops=["Sin"],
                                           min_subgraph_size=1, calibration_data=data))
    onnx.checker.check_graph(hybrid.engines[0].subgraph)
    onnx.checker.check_model(inline_engines(hybrid.model))
    feed = {"x": np.full((2, 4), 2.0, np.float32)}
    for a, b in zip(_run_hybrid(hybrid, tmp_path, feed), _ort(model, feed)):
        np.testing.assert_allclose(a, b, atol=5e-2)


def test_int8_on_a_model_without_quantizable_layers_calibrates_nothing(tmp_path):
    model = make([h.make_node("Relu", ["x"], ["y"], name="relu")], [f32("x", [2, 4])],
                 [f32("y", [2, 4])])
    hybrid = convert(model, TensorRTConfig(precision_mode="int8", min_subgraph_size=1,
                                           calibration_data=[{"x": np.ones((2, 4), np.float32)}]))
    assert hybrid.engines[0].precision["quantize_nodes"] == 0


def test_int8_fp32_layers_belongs_to_int8():
    with pytest.raises(ConfigError, match="int8_fp32_layers applies to precision_mode INT8, not fp16"):
        TensorRTConfig(precision_mode="fp16", int8_fp32_layers=2)


@pytest.mark.parametrize("name", ["/fc/MatMul", "model/fc"])
def test_ops_run_float_matches_slashed_names_after_folding_and_only_them(name):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 1, (8, 8)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 1, (8,)).astype(np.float32), "b")
    nodes = [h.make_node("MatMul", ["x", "w"], ["m"], name=name),
             h.make_node("Add", ["m", "b"], ["a"], name=name + "_bias"),
             h.make_node("Relu", ["a"], ["r"], name="model/relu"),
             h.make_node("Mul", ["r", "r"], ["y"], name="model/sq")]
    model = make(nodes, [f32("x", [2, 8])], [f32("y", [2, 8])], [w, b])
    hybrid = convert(model, TensorRTConfig(precision_mode="fp16", min_subgraph_size=1,
                                           ops_run_float=[name]))
    kept = [k[0] for k in hybrid.engines[0].precision["fp32_nodes"]]
    assert kept == [f"{name}/MatMulAddFusion"]


def test_int8_fp32_layers_beyond_the_quantizable_ones_says_why_fewer_stay(caplog):
    config = dict(precision_mode="int8", calibration_method="minmax", min_subgraph_size=1)
    with caplog.at_level("WARNING", logger="hybridtrt"):
        mixed = convert(_outlier_cnn(), TensorRTConfig(calibration_data=_feeds(4),
                                                       int8_fp32_layers=8, **config))
    assert len(mixed.engines[0].precision["fp32_nodes"]) == 2
    assert re.search(r"int8_fp32_layers 8: engine \S+ keeps 2 layer\(s\) in FP32: it has 2 "
                     r"quantizable layer\(s\), 2 of which change its outputs", caplog.text)
