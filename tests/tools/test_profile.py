"""``profile``: one Chrome-trace track per segment, ORT nodes and TensorRT layers inside them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hybridtrt.errors import ConfigError
from hybridtrt.tools.profile import ProfileSettings, profile
from hybridtrt.tools.target import load_target
from tests.fake_tensorrt import FakeBackend


def _events(result, kind):
    return [e for e in result.trace["traceEvents"] if e.get("cat") == kind]


def test_profile_merges_ort_nodes_into_one_track_per_segment(two_engines, tmp_path):
    _, hybrid = two_engines
    result = profile(load_target(hybrid), ProfileSettings(warmup=2, runs=3, isolate_engines=True))
    names = {e["tid"]: e["args"]["name"] for e in result.trace["traceEvents"]
             if e.get("name") == "thread_name"}
    assert names == {1: "tensorrt_engine_0 (onnxruntime)", 2: "ort_segment_1 (onnxruntime)",
                     3: "tensorrt_engine_1 (onnxruntime)"}
    spans = _events(result, "segment")
    assert len(spans) == 3 * 3  # profiled runs x segments; warm-up runs left out
    sin = [e for e in _events(result, "node") if e["name"] == "sin"]
    assert len(sin) == 3 and {e["tid"] for e in sin} == {2}
    assert {e["args"]["op"] for e in sin} == {"Sin"}
    for node in sin:  # each node sits inside its segment's span of the same run
        span = next(s for s in spans if s["tid"] == 2 and s["args"]["run"] == node["args"]["run"])
        assert span["ts"] - 1 <= node["ts"] <= span["ts"] + span["dur"] + 1
    assert min(e["ts"] for e in result.trace["traceEvents"] if "ts" in e) == 0
    row = next(n for n in result.nodes if n.name == "sin")
    assert (row.segment, row.op_type, row.count) == ("ort_segment_1", "Sin", 3)
    table = result.render(top=2)
    assert "top 2 of" in table and "time %" in table and "node / layer" in table
    # on the CPU no segment is captured; the one with Sin says what would keep it from capture
    assert [(g.segment, g.captured) for g in result.graphs] == [
        ("tensorrt_engine_0", False), ("ort_segment_1", False), ("tensorrt_engine_1", False)]
    assert result.graphs[1].reason == "node 'sin' (Sin) cannot be captured"
    graphs = table[table.index("CUDA graphs:"):].splitlines()
    assert len(graphs) == 6 and "why not" in graphs[1]
    assert "ort_segment_1" in graphs[4] and "node 'sin' (Sin) cannot be captured" in graphs[4]
    assert "CUDA graphs are off (config.enable_cuda_graph())" in graphs[3]
    written = json.loads(result.write_trace(tmp_path / "t.json").read_text())
    assert written == result.trace


def test_profile_lays_tensorrt_layers_inside_engine_spans(two_engines):
    _, hybrid = two_engines
    target = dataclasses.replace(load_target(hybrid), backend=FakeBackend())
    result = profile(target, ProfileSettings(warmup=1, runs=2))
    layers = _events(result, "layer")
    assert [(e["tid"], e["name"], e["dur"]) for e in layers] == [
        (1, "fake_layer", 500.0), (3, "fake_layer", 500.0)] * 2
    rows = {(n.segment, n.name): n for n in result.nodes}
    assert rows["tensorrt_engine_0", "fake_layer"].runs_in == "tensorrt"
    assert rows["tensorrt_engine_0", "fake_layer"].total_ms == pytest.approx(1.0)
    assert [(g.segment, g.captured, g.reason) for g in result.graphs][::2] == [
        ("tensorrt_engine_0", False, "a TensorRT engine (runs in TensorRT, not ORT)"),
        ("tensorrt_engine_1", False, "a TensorRT engine (runs in TensorRT, not ORT)")]
    assert "a TensorRT engine (runs in TensorRT, not ORT)" in result.render()


def test_profile_settings_are_checked():
    with pytest.raises(ConfigError, match="runs >= 1"):
        ProfileSettings(runs=0)
    with pytest.raises(ConfigError, match="CUDA graphs need the GPU"):
        ProfileSettings(cuda_graph=True)
