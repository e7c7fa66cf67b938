"""TensorRT engine segments in the Predictor, with TensorRT replaced at its narrow interface.

The fake engines (tests/fake_tensorrt.py) run on the host through the addresses the segment
binds, so these tests check the runtime's plumbing: placement, profiles, shapes and addresses,
refits, rebuilds and fallbacks. They do not prove TensorRT's own behaviour.
"""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
import pytest

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.trt.builder import TensorRTBuilder
from hybridtrt.errors import IncompatibleEngineError, InputError
from hybridtrt.runtime import Config, Predictor
from hybridtrt.trt.cache import EngineCache
from tests.fake_tensorrt import FakeBackend
from tests.models import split_chain

PROFILES = [Input("x", (1, 4), (2, 4), (4, 4)), Input("x", (8, 4), (8, 4), (16, 4))]


def _saved(tmp_path, backend=None, **config):
    backend = backend or FakeBackend()
    builder = TensorRTBuilder(backend, EngineCache(tmp_path / "cache"))
    settings = {"inputs": PROFILES, "disable_ops": ["Sin"], **config}
    hybrid = convert(split_chain(), TensorRTConfig(**settings), builder=builder)
    return hybrid.save(tmp_path / "model.onnx")


def _config(path, tmp_path):
    config = Config(path)
    config.disable_gpu()
    config.set_engine_cache_dir(tmp_path / "cache")
    return config


def _reference(x):
    session = ort.InferenceSession(split_chain().SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_engines_run_in_tensorrt_and_match_onnxruntime(tmp_path):
    path = _saved(tmp_path)
    backend = FakeBackend()
    predictor = Predictor(_config(path, tmp_path), backend=backend)
    assert [(p.name, p.runs_in) for p in predictor.engine_status()] == [
        ("tensorrt_engine_0", "tensorrt"), ("tensorrt_engine_1", "tensorrt")]
    assert predictor.engine_status()[0].reason == "TensorRT 10.99.0, plan from the stored plan"
    assert [s.kind for s in predictor.plan.segments] == ["engine", "ort", "engine"]
    for batch in (1, 3, 8, 16, 2):
        x = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
        np.testing.assert_allclose(predictor.run_dict({"x": x})["y"], _reference(x), rtol=1e-6)
    refits = [c[1]["refit"] for c in backend.calls if c[0] == "deserialize"]
    assert refits == [True, True]  # weight-stripped plans, refitted from the subgraph


def test_profiles_and_shapes_are_set_only_when_they_change(tmp_path):
    backend = FakeBackend()
    predictor = Predictor(_config(_saved(tmp_path), tmp_path), backend=backend)
    x = np.ones((2, 4), np.float32)
    predictor.run_dict({"x": x})
    start = len(backend.calls)
    predictor.run_dict({"x": x})
    again = [c for c in backend.calls[start:] if c[0] in ("set_profile", "set_input_shape")]
    assert again == []  # same shapes: nothing to set
    predictor.run_dict({"x": np.ones((8, 4), np.float32)})
    switched = [c for c in backend.calls[start:] if c[0] in ("set_profile", "set_input_shape")]
    assert ("set_profile", 1) in switched
    assert ("set_input_shape", ("x", (8, 4))) in switched
    assert [c[1] for c in backend.calls if c[0] == "execute"][-2:] == [1, 1]


def test_a_shape_outside_every_profile_is_an_error_naming_the_engine(tmp_path):
    predictor = Predictor(_config(_saved(tmp_path), tmp_path), backend=FakeBackend())
    with pytest.raises(InputError, match=r"engine tensorrt_engine_0 was built for x: \[1, 4\]\.\.\[4, 4\] "
                                         r"\| x: \[8, 4\]\.\.\[16, 4\]; got x: \[5, 4\]"):
        predictor.run_dict({"x": np.ones((5, 4), np.float32)})


def test_allow_rebuild_widens_the_profile_and_caches_it(tmp_path):
    path = _saved(tmp_path)
    config = _config(path, tmp_path)
    config.allow_rebuild()
    backend = FakeBackend()
    predictor = Predictor(config, backend=backend)
    x = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
    np.testing.assert_allclose(predictor.run_dict({"x": x})["y"], _reference(x), rtol=1e-6)
    assert [c[0] for c in backend.calls].count("build") == 2  # both engines, once
    again = FakeBackend()
    Predictor(config, backend=again).run_dict({"x": x})
    assert [c[0] for c in again.calls].count("build") == 0  # the wider engines come from the cache


def test_a_plan_for_another_tensorrt_is_rebuilt_at_load(tmp_path):
    path = _saved(tmp_path, FakeBackend(version="10.14.0"))
    backend = FakeBackend(version="10.99.0")
    predictor = Predictor(_config(path, tmp_path), backend=backend)
    placement = predictor.engine_status()[0]
    assert placement.runs_in == "tensorrt"
    assert "built with TensorRT 10.14.0, this host has TensorRT 10.99.0" in placement.reason
    assert [c[0] for c in backend.calls].count("build") == 2
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(predictor.run_dict({"x": x})["y"], _reference(x), rtol=1e-6)


def test_without_rebuilds_a_mismatched_plan_falls_back_to_ort_with_the_reason(tmp_path, caplog):
    path = _saved(tmp_path, FakeBackend(capability="8.0"))
    config = _config(path, tmp_path)
    config.build_engines_at_load(False)
    with caplog.at_level(logging.WARNING, logger="hybridtrt"):
        predictor = Predictor(config, backend=FakeBackend(capability="9.0"))
    placement = predictor.engine_status()[0]
    assert placement.runs_in == "onnxruntime"
    assert placement.reason == ("built for compute capability 8.0 (Fake GPU); this GPU (Fake GPU) "
                                "has 9.0 (building engines at load is turned off)")
    assert "tensorrt_engine_0 runs in ONNX Runtime (inlined)" in caplog.text
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(predictor.run_dict({"x": x})["y"], _reference(x), rtol=1e-6)
    config.require_tensorrt()
    with pytest.raises(IncompatibleEngineError, match="compute capability 8.0"):
        Predictor(config, backend=FakeBackend(capability="9.0"))


def test_engines_not_built_at_conversion_are_built_at_first_load(tmp_path):
    path = convert(split_chain(), TensorRTConfig(PROFILES, disable_ops=["Sin"])).save(tmp_path / "m.onnx")
    backend = FakeBackend()
    predictor = Predictor(_config(path, tmp_path), backend=backend)
    assert {p.runs_in for p in predictor.engine_status()} == {"tensorrt"}
    assert "TensorRT is turned off" in predictor.engine_status()[0].reason
    x = np.ones((3, 4), np.float32)
    np.testing.assert_allclose(predictor.run_dict({"x": x})["y"], _reference(x), rtol=1e-6)
    second = FakeBackend()
    Predictor(_config(path, tmp_path), backend=second)
    assert [c[0] for c in second.calls].count("build") == 0
    assert "the engine cache" in Predictor(_config(path, tmp_path), backend=second).engine_status()[0].reason


def test_data_dependent_outputs_use_the_output_allocator(tmp_path):
    path = _saved(tmp_path)
    predictor = Predictor(_config(path, tmp_path), backend=FakeBackend(data_dependent=True))
    x = np.random.default_rng(1).standard_normal((4, 4)).astype(np.float32)
    np.testing.assert_allclose(predictor.run_dict({"x": x})["y"], _reference(x), rtol=1e-6)


def test_clones_have_their_own_contexts_and_agree(tmp_path):
    backend = FakeBackend()
    predictor = Predictor(_config(_saved(tmp_path), tmp_path), backend=backend)
    clone = predictor.clone()
    assert [c[0] for c in backend.calls].count("create_context") == 4
    assert [c[0] for c in backend.calls].count("deserialize") == 2  # engines shared
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(predictor.run_dict({"x": x})["y"], clone.run_dict({"x": x})["y"])


def test_profiling_reports_layers_per_engine(tmp_path):
    config = _config(_saved(tmp_path), tmp_path)
    seen = []
    config.enable_tensorrt_profiling(lambda engine, layer, ms: seen.append((engine, layer, ms)))
    Predictor(config, backend=FakeBackend()).run_dict({"x": np.ones((2, 4), np.float32)})
    assert seen == [("tensorrt_engine_0", "fake_layer", 0.5), ("tensorrt_engine_1", "fake_layer", 0.5)]
