"""Paddle 2.x-style online TensorRT: a plain ONNX model converted at load, cached in _opt_cache/.

Each online result is compared with the offline path (``convert`` with the same TensorRTConfig)
and with ONNX Runtime on the original model. HYBRIDTRT_BACKEND=none here (tests/conftest.py):
engines fall back to ONNX Runtime, except in the TensorRT-RTX test, which builds real plans.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest

from hybridtrt import ConfigError, HybridTRTError, Input, TensorRTConfig, convert
from hybridtrt import load as hybridtrt_load
from hybridtrt.runtime import Config, PrecisionType, create_predictor
from hybridtrt.trt.library import RTX, installed
from tests.models import conv_classifier, split_chain
from tests.suites import ort_run, outputs_match

ROOT = Path(__file__).resolve().parents[2]


def saved(tmp_path: Path, model: onnx.ModelProto, name: str = "model.onnx") -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    onnx.save(model, str(folder / name))
    return folder / name


def fp16_config(path: Path, use_static: bool = True) -> Config:
    """Paddle's FP16 example, only the model path adapted."""
    config = Config(str(path))
    config.enable_tensorrt_engine(workspace_size=1 << 28, max_batch_size=4, min_subgraph_size=1,
                                  precision_mode=PrecisionType.Half, use_static=use_static,
                                  use_calib_mode=False)
    config.set_trt_dynamic_shape_info({"x": [1, 4]}, {"x": [8, 4]}, {"x": [2, 4]})
    config.exp_disable_tensorrt_ops(["Sin"])
    return config


def batches(count: int, sizes=(1, 2, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(sizes[k % len(sizes)], 4)).astype(np.float32) for k in range(count)]


def test_fp16_online_builds_the_offline_models_bytes_and_answers(tmp_path):
    path = saved(tmp_path, split_chain())
    predictor = create_predictor(fp16_config(path))
    cached = list((path.parent / "_opt_cache").glob("hybrid-*.onnx"))
    assert len(cached) == 1
    offline = convert(str(path), TensorRTConfig(
        inputs=[Input("x", [1, 4], [2, 4], [8, 4])], min_subgraph_size=1, disable_ops=["Sin"],
        precision_mode="fp16", workspace_size=1 << 28)).save(tmp_path / "offline.onnx")
    assert cached[0].read_bytes() == offline.read_bytes()
    assert len(predictor.engine_status()) == 2  # Sin kept out: two engines
    offline_predictor = create_predictor(Config(offline))
    for x in batches(3):
        got = predictor.run(None, {"x": x})
        assert outputs_match(got, offline_predictor.run(None, {"x": x}), 0, 0)
        assert outputs_match(got, ort_run(split_chain(), {"x": x}), 1e-2, 1e-3)


def test_paddle_style_handles_run_as_in_paddles_example(tmp_path):
    path = saved(tmp_path, split_chain())
    predictor = create_predictor(fp16_config(path, use_static=False))
    x = batches(1)[0]
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(x.shape)
    handle.copy_from_cpu(x)
    predictor.run()
    y = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    assert outputs_match([y], ort_run(split_chain(), {"x": x}), 1e-2, 1e-3)
    assert not (path.parent / "_opt_cache").exists()  # use_static=False keeps nothing


_SECOND = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout)
from tests.online.test_online import fp16_config
from hybridtrt.runtime import create_predictor
import numpy as np
p = create_predictor(fp16_config(sys.argv[1]))
print(p.run(None, {"x": np.ones((2, 4), np.float32)})[0].sum())
"""


def second_process(path: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _SECOND, str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def test_a_second_process_loads_from_opt_cache_and_a_changed_model_invalidates(tmp_path):
    path = saved(tmp_path, split_chain())
    create_predictor(fp16_config(path))
    log = second_process(path)
    assert "from _opt_cache (no conversion)" in log and "converting" not in log
    onnx.save(split_chain(width=4, batch="B"), str(path))  # another model under the same name
    log = second_process(path)
    assert "converting model.onnx" in log and "no conversion" not in log


def test_two_threads_creating_predictors_at_once_build_once(tmp_path, caplog):
    path = saved(tmp_path, split_chain())
    made: list[object] = []
    with caplog.at_level(logging.INFO, logger="hybridtrt.online"):
        threads = [threading.Thread(target=lambda: made.append(create_predictor(fp16_config(path))))
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(made) == 2
    made.append(made[0].clone())  # type: ignore[attr-defined]
    assert caplog.text.count("converting model.onnx") == 1
    x = batches(1)[0]
    assert outputs_match(made[2].run(None, {"x": x}), made[1].run(None, {"x": x}), 0, 0)  # type: ignore[attr-defined]


def int8_config(path: Path, runs: int) -> Config:
    """Paddle's INT8 calibration example (use_calib_mode=True), only the model path adapted."""
    config = Config(str(path))
    config.enable_tensorrt_engine(workspace_size=1 << 28, max_batch_size=1, min_subgraph_size=1,
                                  precision_mode=PrecisionType.Int8, use_static=False,
                                  use_calib_mode=True, calibration_runs=runs)
    return config


def images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.random((1, 3, 16, 16), dtype=np.float32) for _ in range(count)]


def test_int8_calibrates_on_traffic_then_matches_offline_int8(tmp_path, caplog):
    model = conv_classifier()
    path = saved(tmp_path, model)
    feeds = images(12)
    predictor = create_predictor(int8_config(path, runs=12))
    for x in feeds[:11]:  # FP32 through ONNX Runtime while calibrating
        assert outputs_match(predictor.run(None, {"x": x}), ort_run(model, {"x": x}), 1e-5, 1e-6)
        assert predictor.calibrating and predictor.engine_status() == []
    predictor.run(None, {"x": feeds[11]})  # the 12th run calibrates and builds INT8
    assert not predictor.calibrating and len(predictor.engine_status()) == 1
    table = list((path.parent / "_opt_cache").glob("calibration-*.json"))
    assert len(table) == 1 and json.loads(table[0].read_text())
    offline = convert(str(path), TensorRTConfig(min_subgraph_size=1, precision_mode="int8",
                                                workspace_size=1 << 28,
                                                calibration_data=[{"x": x} for x in feeds],
                                                calibration_cache=str(tmp_path / "table.json")))
    assert json.loads((tmp_path / "table.json").read_text()) == json.loads(table[0].read_text())
    offline_predictor = create_predictor(Config(offline.save(tmp_path / "offline.onnx")))
    x = images(13)[-1]
    assert outputs_match(predictor.run(None, {"x": x}), offline_predictor.run(None, {"x": x}), 0, 0)
    later = shutil.copytree(path.parent, tmp_path / "later")  # as a later load (another folder)
    with caplog.at_level(logging.INFO, logger="hybridtrt"):
        again = create_predictor(int8_config(later / path.name, runs=12))  # the table: INT8 now
    assert not again.calibrating and len(again.engine_status()) == 1
    assert "ranges read from" in caplog.text


def test_finish_calibration_builds_early_and_errs_when_there_is_nothing(tmp_path):
    path = saved(tmp_path, conv_classifier())
    predictor = create_predictor(int8_config(path, runs=500))
    with pytest.raises(HybridTRTError, match="no run yet"):
        predictor.finish_calibration()
    for x in images(3):
        predictor.run(None, {"x": x})
    predictor.finish_calibration()
    assert not predictor.calibrating
    with pytest.raises(HybridTRTError, match="not calibrating"):
        predictor.finish_calibration()


def test_shape_collection_then_tuned_dynamic_shape_gives_the_offline_profile(tmp_path):
    path = saved(tmp_path, split_chain())
    shapes = tmp_path / "shape_range_info.json"
    config = Config(str(path))
    config.enable_tensorrt_engine(min_subgraph_size=1, precision_mode=PrecisionType.Float32)
    config.collect_shape_range_info(str(shapes))
    collecting = create_predictor(config)
    for x in batches(5, sizes=(2, 1, 2, 5, 2)):
        assert outputs_match(collecting.run(None, {"x": x}), ort_run(split_chain(), {"x": x}), 1e-6, 1e-6)
    recorded = json.loads(shapes.read_text())
    assert recorded["inputs"] == {"x": {"min": [1, 4], "max": [5, 4], "opt": [2, 4]}}
    assert sorted(recorded["tensors"]) == ["a", "b", "c", "d", "e", "f", "y"]  # every tensor
    assert recorded["tensors"]["d"] == {"min": [1, 4], "max": [5, 4], "opt": [2, 4]}
    tuned = Config(str(path))
    tuned.enable_tensorrt_engine(min_subgraph_size=1, precision_mode=PrecisionType.Float32,
                                 use_static=True)
    tuned.enable_tuned_tensorrt_dynamic_shape(str(shapes), True)
    predictor = create_predictor(tuned)
    offline = convert(str(path), TensorRTConfig(inputs=[Input("x", [1, 4], [2, 4], [5, 4])],
                                                min_subgraph_size=1)).save(tmp_path / "off.onnx")
    assert next((path.parent / "_opt_cache").glob("hybrid-*.onnx")).read_bytes() == offline.read_bytes()
    x = batches(1, sizes=(7,))[0]  # outside the collected range: allow_build_at_runtime
    assert outputs_match(predictor.run(None, {"x": x}), ort_run(split_chain(), {"x": x}), 1e-6, 1e-6)
    fixed = Config(str(path))
    fixed.enable_tensorrt_engine(min_subgraph_size=1)
    fixed.enable_tuned_tensorrt_dynamic_shape(str(shapes), allow_build_at_runtime=False)
    with pytest.raises(HybridTRTError, match="was built for x: \\[1, 4\\]..\\[5, 4\\]; got x: \\[7, 4\\]"):
        create_predictor(fixed).run(None, {"x": x})


@pytest.mark.skipif(not installed(RTX), reason="tensorrt_rtx is not installed")
def test_with_tensorrt_rtx_real_engines_are_built_at_load(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRIDTRT_BACKEND", RTX)
    monkeypatch.setenv("HYBRIDTRT_CACHE_DIR", str(tmp_path / "cache"))
    path = saved(tmp_path, conv_classifier())
    config = Config(str(path))
    config.enable_tensorrt_engine(min_subgraph_size=1, use_static=True)
    predictor = create_predictor(config)
    assert [s.reason for s in predictor.engine_status()] == [
        "TensorRT-RTX needs a GPU; the predictor runs on the CPU"]
    x = images(1)[0]
    assert outputs_match(predictor.run(None, {"x": x}), ort_run(conv_classifier(), {"x": x}), 1e-4, 1e-5)


def test_every_wrong_combination_says_what_to_change(tmp_path):
    path = saved(tmp_path, conv_classifier())
    config = Config(str(path))
    with pytest.raises(ConfigError, match="call config.enable_tensorrt_engine"):
        config.set_trt_dynamic_shape_info({"x": [1]}, {"x": [1]}, {"x": [1]})
    with pytest.raises(ConfigError, match="use_calib_mode=True calibrates INT8"):
        config.enable_tensorrt_engine(precision_mode=PrecisionType.Half, use_calib_mode=True)
    with pytest.raises(ConfigError, match="precision_mode 'int4'"):
        config.enable_tensorrt_engine(precision_mode="int4")
    config.enable_tensorrt_engine(precision_mode=PrecisionType.Int8)
    with pytest.raises(ConfigError, match="use_calib_mode=True .* or a model with QuantizeLinear"):
        create_predictor(config)
    config.enable_tensorrt_engine()
    with pytest.raises(ConfigError, match="must name the same inputs"):
        config.set_trt_dynamic_shape_info({"x": [1]}, {"y": [1]}, {"x": [1]})
    config.set_trt_dynamic_shape_info({"y": [1]}, {"y": [1]}, {"y": [1]})
    with pytest.raises(ConfigError, match="names 'y', which is not an input of this model"):
        create_predictor(config)
    bad = tmp_path / "shapes.json"
    bad.write_text(json.dumps({"format": "hybridtrt.shape_range_info/1",
                               "inputs": {"x": {"min": [1, 3], "max": [1, 3], "opt": [1, 3]}}}))
    tuned = Config(str(path))
    tuned.enable_tensorrt_engine()
    tuned.enable_tuned_tensorrt_dynamic_shape(str(bad))
    with pytest.raises(ConfigError, match="tensor 'x' has min shape \\[1, 3\\].*rank 4"):
        create_predictor(tuned)
    bad.write_text(json.dumps({"format": "hybridtrt.shape_range_info/1", "inputs": {},
                               "tensors": {"logits": {"min": [1], "max": [1], "opt": [1]}}}))
    with pytest.raises(ConfigError, match="names tensor 'logits', which no node of this model "
                                          "computes: the file was recorded on another model"):
        create_predictor(tuned)
    with pytest.raises(ConfigError, match="does not exist: run once with"):
        tuned.enable_tuned_tensorrt_dynamic_shape(str(tmp_path / "none.json"))
        create_predictor(tuned)
    (path.parent / "_opt_cache").write_text("in the way")
    static = Config(str(path))
    static.enable_tensorrt_engine(use_static=True)
    with pytest.raises(ConfigError, match="keeps the built model in .*cannot be written.*, or use "
                                          "use_static=False"):
        create_predictor(static)
    with pytest.raises(ConfigError, match="keeps the calibration table in .*cannot be written"):
        create_predictor(int8_config(path, runs=5))


def test_int8_without_calibration_builds_a_q_dq_model_as_it_is(tmp_path):
    from tests.compiler.test_precision import _qdq_model

    path = saved(tmp_path, _qdq_model())
    config = Config(str(path))
    config.enable_tensorrt_engine(min_subgraph_size=1, precision_mode=PrecisionType.Int8,
                                  use_static=True, use_calib_mode=False)
    predictor = create_predictor(config)
    offline = convert(str(path), TensorRTConfig(min_subgraph_size=1, precision_mode="int8"))
    cached = next((path.parent / "_opt_cache").glob("hybrid-*.onnx"))
    assert cached.read_bytes() == offline.save(tmp_path / "offline.onnx").read_bytes()
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    assert outputs_match(predictor.run(None, {"x": x}), ort_run(_qdq_model(), {"x": x}), 1e-6, 1e-6)
    assert not list((path.parent / "_opt_cache").glob("calibration-*.json"))


def test_another_setting_builds_anew_next_to_the_first(tmp_path):
    path = saved(tmp_path, split_chain())
    create_predictor(fp16_config(path))
    other = fp16_config(path)
    other.enable_tensorrt_engine(min_subgraph_size=1, precision_mode=PrecisionType.Bfloat16,
                                 use_static=True)
    create_predictor(other)
    assert len(list((path.parent / "_opt_cache").glob("hybrid-*.onnx"))) == 2


def _tuned(path: Path, shapes: Path, allow: bool) -> Config:
    config = Config(str(path))
    config.enable_tensorrt_engine(min_subgraph_size=1, use_static=True)
    config.exp_disable_tensorrt_ops(["Sin"])
    config.enable_tuned_tensorrt_dynamic_shape(str(shapes), allow_build_at_runtime=allow)
    config.disable_gpu()
    return config


def test_allow_build_at_runtime_rebuilds_a_wider_engine_kept_in_opt_cache(tmp_path):
    """With TensorRT (the fake, at its narrow interface): a shape outside the collected range
    rebuilds the engines once; the wider plans land in _opt_cache/ and a new predictor takes
    them from there instead of building again."""
    from hybridtrt.online.predictor import OnlinePredictor
    from tests.fake_tensorrt import FakeBackend

    path, shapes = saved(tmp_path, split_chain()), tmp_path / "shapes.json"
    collect = Config(str(path))
    collect.enable_tensorrt_engine(min_subgraph_size=1)
    collect.collect_shape_range_info(str(shapes))
    collecting = OnlinePredictor(collect.settings(), backend=FakeBackend())
    for x in batches(3, sizes=(1, 2, 4)):
        collecting.run(None, {"x": x})
    backend = FakeBackend()
    fixed = OnlinePredictor(_tuned(path, shapes, False).settings(), backend=backend)
    assert [p.runs_in for p in fixed.engine_status()] == ["tensorrt", "tensorrt"]
    assert [c[0] for c in backend.calls].count("build") == 2  # at convert, into _opt_cache
    x = batches(1, sizes=(9,))[0]
    with pytest.raises(HybridTRTError, match=r"was built for x: \[1, 4\]\.\.\[4, 4\]; got x: \[9, 4\]"):
        fixed.run(None, {"x": x})
    wider = OnlinePredictor(_tuned(path, shapes, True).settings(), backend=backend)
    start = len(backend.calls)
    assert outputs_match(wider.run(None, {"x": x}), ort_run(split_chain(), {"x": x}), 1e-6, 1e-6)
    assert [c[0] for c in backend.calls[start:]].count("build") == 2  # both engines, widened
    plans = sorted((path.parent / "_opt_cache" / "engines").glob("*.plan"))
    assert len(plans) == 4  # the collected-range pair and the widened pair
    again = FakeBackend()
    later = OnlinePredictor(_tuned(path, shapes, True).settings(), backend=again)
    assert outputs_match(later.run(None, {"x": x}), ort_run(split_chain(), {"x": x}), 1e-6, 1e-6)
    assert [c[0] for c in again.calls].count("build") == 0  # every plan from _opt_cache


def test_online_predictor_answers_what_a_predictor_answers(tmp_path):
    path = saved(tmp_path, split_chain())
    config = fp16_config(path, use_static=False)
    config.enable_profile(str(tmp_path / "prof_"))
    predictor = create_predictor(config)
    x = batches(1, sizes=(2,))[0]
    binding = predictor.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_output("y")
    predictor.run_with_iobinding(binding)
    assert outputs_match(binding.copy_outputs_to_cpu(), predictor.run(None, {"x": x}), 0, 0)
    assert predictor.get_providers()[-1] == "CPUExecutionProvider"
    assert predictor.run_stats().host_copies == 0  # the CPU predictor's stats
    assert predictor.graph_status() and all(g.captured or g.reason for g in predictor.graph_status())
    profiles = predictor.end_profiling()
    assert profiles and all(Path(p).is_file() for p in profiles.values())
    handle = predictor.get_input_handle("x")
    handle.reshape([3, 4])
    with pytest.raises(HybridTRTError, match=r"input 'x' was reshaped to \[3, 4\] \(12 values\), "
                                             r"but copy_from_cpu got an array of shape \[2, 4\]"):
        handle.copy_from_cpu(x)


def topk_chain() -> onnx.ModelProto:
    """x [N, 8], k [1] -> TopK (kept in ORT) -> Relu -> Add -> Mul: the engine's input has as
    many columns as k's value says, which no warm-up on random k can know."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk"),
             helper.make_node("Relu", ["v"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "r"], ["s"], name="add"),
             helper.make_node("Mul", ["s", "r"], ["y"], name="mul")]
    graph = helper.make_graph(nodes, "topk_chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8]),
                               helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "K"])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_tuned_profiles_cover_value_dependent_shapes_recorded_on_real_inputs(tmp_path):
    path, shapes = saved(tmp_path, topk_chain()), tmp_path / "shapes.json"
    collect = Config(str(path))
    collect.enable_tensorrt_engine(min_subgraph_size=1)
    collect.exp_disable_tensorrt_ops(["TopK"])
    collect.collect_shape_range_info(str(shapes))
    collecting = create_predictor(collect)
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((n, 8)).astype(np.float32), "k": np.array([k])}
             for n, k in ((1, 3), (2, 5), (4, 4))]
    for feed in feeds:
        collecting.run(None, feed)
    assert json.loads(shapes.read_text())["tensors"]["v"] == {"min": [1, 3], "max": [4, 5],
                                                              "opt": [4, 4]}
    tuned = Config(str(path))
    tuned.enable_tensorrt_engine(min_subgraph_size=1, use_static=True)
    tuned.exp_disable_tensorrt_ops(["TopK"])
    tuned.enable_tuned_tensorrt_dynamic_shape(str(shapes), allow_build_at_runtime=False)
    predictor = create_predictor(tuned)
    for feed in feeds:
        assert outputs_match(predictor.run(None, feed), ort_run(topk_chain(), feed), 1e-6, 1e-6)
    built = next((path.parent / "_opt_cache").glob("hybrid-*.onnx"))
    offline = convert(str(path), TensorRTConfig(shape_range_info=str(shapes), min_subgraph_size=1,
                                                disable_ops=["TopK"])).save(tmp_path / "off.onnx")
    assert built.read_bytes() == offline.read_bytes()
    profile = hybridtrt_load(offline).engines[0].profiles[0]
    assert profile["v"]["max"] == [4, 5] and profile["v"]["min"][1] <= 3  # widened to cover
    blind = convert(str(path), TensorRTConfig(inputs=[Input("x", [1, 8], [1, 8], [4, 8])],
                                              min_subgraph_size=1, disable_ops=["TopK"]))
    assert blind.engines == ()  # without the recorded range, v's shape is unknown: no engine
    with pytest.raises(ConfigError, match="give either inputs or shape_range_info"):
        TensorRTConfig(inputs=[Input("x", [1, 8], [1, 8], [4, 8])], shape_range_info=str(shapes))
