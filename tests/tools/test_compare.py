"""``compare``: outputs against plain ONNX Runtime, and the first diverging segment."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybridtrt import TensorRTConfig, convert
from hybridtrt.errors import ConfigError
from hybridtrt.tools.compare import compare, diff_tensor
from hybridtrt.tools.target import load_target
from tests.tools.conftest import PROFILE


def test_an_fp32_hybrid_matches_its_original(two_engines):
    original, hybrid = two_engines
    result = compare(load_target(hybrid, original=original), atol=1e-6, rtol=1e-6)
    assert result.ok and result.first_divergence is None
    assert [o.name for o in result.outputs] == ["y"]
    assert [(s.name, s.ok) for s in result.segments] == [
        ("tensorrt_engine_0", True), ("ort_segment_1", True), ("tensorrt_engine_1", True)]
    assert "PASSED: all 1 compared output(s) match" in result.render()


def test_the_first_diverging_segment_is_found(two_engines, tmp_path):
    original, _ = two_engines
    bf16 = convert(original, TensorRTConfig(inputs=[PROFILE], disable_ops=["Sin"],
                                            min_subgraph_size=1, precision_mode="bf16"))
    path = bf16.save(tmp_path / "bf16.hybrid.onnx")
    x = {"x": np.linspace(-3, 3, 8, dtype=np.float32).reshape(2, 4) + 0.01}
    result = compare(load_target(path, original=original), atol=1e-7, rtol=1e-7, inputs=x)
    assert not result.ok
    assert result.first_divergence == "tensorrt_engine_0"
    first = result.segments[0]
    assert first.inputs_ok and not first.ok and first.outputs[0].name == "c"
    assert not result.segments[1].inputs_ok  # Sin reads the diverged tensor
    text = result.render()
    assert "FAILED: 1 of 1 output(s) differ: ['y']" in text
    assert ("first diverging segment: tensorrt_engine_0 (onnxruntime); its inputs match the "
            "original, so the difference starts inside it; worst tensor c") in text
    data = json.loads(result.to_json())
    assert data["ok"] is False and data["first_divergence"] == "tensorrt_engine_0"
    assert data["segments"][0]["outputs"][0]["ok"] is False
    loose = compare(load_target(path, original=original), atol=0.1, rtol=0.05, inputs=x)
    assert loose.ok


def test_diff_tensor_counts_what_falls_outside_the_tolerance():
    want = np.array([1.0, 2.0, np.nan, 4.0], np.float32)
    got = np.array([1.0, 2.5, np.nan, 4.0001], np.float32)
    diff = diff_tensor("t", got, want, atol=1e-3, rtol=0.0)
    assert (diff.mismatched, diff.size, diff.ok) == (1, 4, False)
    assert diff.max_abs == pytest.approx(0.5)
    assert diff_tensor("t", got[:2], want, 1, 1).original_shape == (4,)
    assert not diff_tensor("t", got[:2], want, 1, 1).ok
    assert diff_tensor("i", np.array([1, 2]), np.array([1, 3]), 10, 10).mismatched == 1


def test_negative_tolerances_are_refused(two_engines):
    _, hybrid = two_engines
    with pytest.raises(ConfigError, match="tolerances must be >= 0, got atol=-1"):
        compare(load_target(hybrid), atol=-1)
