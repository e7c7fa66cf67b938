"""``bench``: the tables and the JSON document (numbers are measured, not asserted)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hybridtrt.errors import ConfigError, InputError
from hybridtrt.runtime.segments import GraphStatus
from hybridtrt.tools.bench import BenchSettings, benchmark, latency_stats
from hybridtrt.tools.target import load_target

QUICK = dict(warmup=1, iterations=5, segment_runs=3)


def test_latency_stats_are_percentiles_of_the_runs_in_milliseconds():
    stats = latency_stats([0.001 * k for k in range(1, 101)])
    assert (stats.runs, stats.min_ms, stats.max_ms) == (100, 1.0, 100.0)
    assert stats.median_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p95_ms == pytest.approx(95.05)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.throughput == pytest.approx(1000 / 50.5)


def test_bench_times_every_segment_and_the_boundaries(two_engines):
    _, hybrid = two_engines
    result = benchmark(load_target(hybrid), BenchSettings(isolate_engines=True, **QUICK))
    assert [s.name for s in result.segments] == ["tensorrt_engine_0", "ort_segment_1",
                                                 "tensorrt_engine_1"]
    assert [s.nodes for s in result.segments] == [3, 1, 3]
    assert result.boundaries == 2 and result.boundary_ms >= 0
    assert result.hybrid.runs == 5 and result.ort is None and result.ratio is None
    assert result.shapes == {"x": [2, 4]}  # the engine profile's opt shape
    text = result.render()
    for expected in ("runner", "mean ms", "median ms", "p95 ms", "p99 ms", "runs/s", "hybridtrt", "tensorrt_engine_1",
                     "predictor, 2 boundaries", "peak host memory (RSS)"):
        assert expected in text


def test_bench_compares_with_plain_onnxruntime_and_writes_its_json_schema(two_engines):
    original, hybrid = two_engines
    result = benchmark(load_target(hybrid), BenchSettings(compare_ort=True, **QUICK),
                       shapes={"x": (4, 4)})
    assert result.original_from.startswith(str(original))  # found beside the hybrid model
    assert result.ort is not None and result.ratio == pytest.approx(
        result.hybrid.median_ms / result.ort.median_ms)
    assert "hybridtrt / onnxruntime (median)" in result.render()
    data = json.loads(result.to_json())
    assert data["schema"] == 1 and data["shapes"] == {"x": [4, 4]}
    assert set(data) == {"schema", "model", "device", "shapes", "settings", "hybrid", "segments",
                         "boundary_ms", "boundaries", "memory_peak_mib", "memory_kind", "ort",
                         "original_from", "ratio", "graphs"}
    assert data["graphs"] == [] and "CUDA graphs" not in result.render()  # only with --cuda-graph
    assert set(data["hybrid"]) == {"runs", "min_ms", "median_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
                                   "mean_ms", "throughput"}
    assert set(data["segments"][0]) == {"name", "kind", "runs_in", "nodes", "median_ms"}


def test_bench_with_cuda_graphs_says_which_segments_are_captured_and_why_not(two_engines):
    _, hybrid = two_engines
    result = benchmark(load_target(hybrid), BenchSettings(isolate_engines=True, **QUICK))
    graphs = (GraphStatus("tensorrt_engine_0", True, ""),
              GraphStatus("ort_segment_1", False, "node 'sin' (Sin) cannot be captured"))
    lines = dataclasses.replace(result, graphs=graphs).render().splitlines()
    table = lines[lines.index("CUDA graphs:") + 1:]
    assert table[0].split() == ["segment", "captured", "why", "not"]
    assert table[2].split() == ["tensorrt_engine_0", "yes", "-"]
    assert table[3].split()[:2] == ["ort_segment_1", "no"]
    assert table[3].endswith("node 'sin' (Sin) cannot be captured")


def test_bench_by_duration_runs_at_least_the_minimum(two_engines):
    _, hybrid = two_engines
    result = benchmark(load_target(hybrid), BenchSettings(warmup=0, duration=0.01, min_runs=7,
                                                          segment_runs=0))
    assert result.hybrid.runs >= 7 and result.segments == ()


def test_bench_converts_a_plain_model_first(two_engines):
    original, _ = two_engines
    target = load_target(original, {"x": (3, 4)})
    assert [e.name for e in target.hybrid.engines] == ["tensorrt_engine_0"]  # Sin is supported
    result = benchmark(target, BenchSettings(**QUICK), shapes={"x": (3, 4)})
    assert result.shapes == {"x": [3, 4]}


def test_bench_errors_name_the_setting_or_input(two_engines):
    original, hybrid = two_engines
    with pytest.raises(ConfigError, match="iterations must be >= 1, got 0"):
        BenchSettings(iterations=0)
    with pytest.raises(ConfigError, match="duration must be > 0 seconds"):
        BenchSettings(duration=0)
    with pytest.raises(InputError, match=r"\['y'\] are not model inputs; the inputs are \['x'\]"):
        benchmark(load_target(hybrid), BenchSettings(**QUICK), shapes={"y": (1, 4)})
    import onnx

    from tests.models import split_chain

    dynamic = original.with_name("dynamic.onnx")
    onnx.save(split_chain(), dynamic)
    with pytest.raises(InputError, match=r"input 'x' has dynamic shape \['N', 4\]: give it with "
                                         r"--shapes x:Nx4"):
        load_target(dynamic)  # a plain model is converted with static shapes


def test_scalar_inputs_get_random_values_and_sequences_a_clear_error(tmp_path):
    import onnx
    from onnx import TensorProto
    from onnx import helper as h

    from hybridtrt import TensorRTConfig, convert

    graph = h.make_graph([h.make_node("Relu", ["s"], ["r"], name="relu"),
                          h.make_node("Neg", ["r"], ["y"], name="neg")], "scalar",
                         [h.make_tensor_value_info("s", TensorProto.FLOAT, [])],
                         [h.make_tensor_value_info("y", TensorProto.FLOAT, [])])
    path = convert(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]),
                   TensorRTConfig(min_subgraph_size=1)).save(tmp_path / "s.onnx")
    result = benchmark(load_target(path), BenchSettings(**QUICK))
    assert result.shapes == {"s": []}
    seq = h.make_graph([h.make_node("SequenceLength", ["q"], ["n"], name="len")], "seq",
                       [h.make_tensor_sequence_value_info("q", TensorProto.FLOAT, None)],
                       [h.make_tensor_value_info("n", TensorProto.INT64, [])])
    seq_path = tmp_path / "seq.onnx"
    onnx.save(h.make_model(seq, opset_imports=[h.make_opsetid("", 17)]), seq_path)
    with pytest.raises(InputError, match="input 'q' is a sequence, not a tensor"):
        benchmark(load_target(seq_path), BenchSettings(**QUICK))
