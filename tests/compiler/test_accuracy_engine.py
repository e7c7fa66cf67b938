"""The accuracy guard measuring through the engine itself, with TensorRT replaced at its narrow
interface (tests/fake_tensorrt.py: "engines" run the built subgraph in ONNX Runtime at the
addresses the runtime's engine segment binds). This proves the guard's plumbing (the build, the
runs, the verdicts taken from the engine's outputs), not real TensorRT's numbers.
"""

from __future__ import annotations

import logging
import time

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto
from onnx import helper as h
from onnx import numpy_helper

from hybridtrt import AccuracyError, Input, TensorRTConfig, convert
from hybridtrt.runtime import Config, Predictor
from hybridtrt.trt.api import BuildTarget, GpuInfo
from hybridtrt.trt.builder import TensorRTBuilder
from hybridtrt.trt.cache import EngineCache
from hybridtrt.trt.engine import BuildResult
from tests.fake_tensorrt import FakeBackend
from tests.models import f32, fp16_rounding, make


def _fp16(**settings: object) -> TensorRTConfig:
    return TensorRTConfig(precision_mode="fp16", precision_guard=False, min_subgraph_size=1,
                          **settings)  # type: ignore[arg-type]


def _builder(tmp_path: Path, **fake: object) -> tuple[FakeBackend, TensorRTBuilder]:
    backend = FakeBackend(**fake)  # type: ignore[arg-type]
    return backend, TensorRTBuilder(backend, EngineCache(tmp_path / "cache"))


def _lowered_builds(backend: FakeBackend) -> int:
    return sum(1 for name, ops in backend.calls if name == "build" and "Cast" in ops)


def test_with_an_engine_that_runs_the_guard_measures_through_it(tmp_path: Path) -> None:
    backend, builder = _builder(tmp_path)
    hybrid = convert(fp16_rounding(), _fp16(), builder=builder)
    engine = hybrid.report().engines[0]
    assert engine.accuracy_measured_by == "tensorrt" and engine.accuracy_demoted == ()
    assert 1e-5 < engine.accuracy_after[0]["rel_l2"] < 5e-3
    assert hybrid.engines[0].precision["accuracy"]["measured_by"] == "tensorrt"
    calls = [name for name, _ in backend.calls]
    # one lowered build and one run per warm-up feed for the guard; the shipped build of the
    # same lowering is then an engine-cache hit (this engine has no Softmax/Sigmoid output,
    # whose logits copies would make the guard's graph another one)
    assert _lowered_builds(backend) == 1 and calls.count("execute") >= 1
    assert calls.count("deserialize") == engine.accuracy_runs - 1  # the reference runs in ORT
    assert "runs through TensorRT" in hybrid.report().render()
    assert hybrid.report().to_dict()["engines"][0]["accuracy_measured_by"] == "tensorrt"


def test_without_tensorrt_the_guard_measures_through_onnx_runtime() -> None:
    engine = convert(fp16_rounding(), _fp16()).report().engines[0]  # HYBRIDTRT_BACKEND=none
    assert engine.accuracy_measured_by == "onnxruntime"
    assert "runs through ONNX Runtime" in convert(fp16_rounding(), _fp16()).report().render()


def test_without_an_engine_that_runs_here_the_guard_measures_through_onnx_runtime(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend, builder = _builder(tmp_path)
    monkeypatch.setattr(backend, "unusable_reason",
                        lambda device, device_id: "TensorRT-RTX cannot run on this GPU")
    engine = convert(fp16_rounding(), _fp16(), builder=builder).report().engines[0]
    assert engine.accuracy_measured_by == "onnxruntime"
    assert [name for name, _ in backend.calls].count("execute") == 0
    assert _lowered_builds(backend) == 1  # only the shipped build


def test_tensorrt_rtx_plans_for_other_gpus_are_not_run_by_the_guard(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend(capability="9.0")
    backend.library = "tensorrt_rtx"
    monkeypatch.setattr(backend, "build_target", lambda device_id, targets: BuildTarget(
        GpuInfo("TensorRT-RTX targets 8.6", "8.6"), ("8.6",)))
    builder = TensorRTBuilder(backend, EngineCache(tmp_path / "cache"))
    engine = convert(fp16_rounding(), _fp16(), builder=builder).report().engines[0]
    assert engine.accuracy_measured_by == "onnxruntime"
    assert [name for name, _ in backend.calls].count("execute") == 0


def _y(path: Path, backend: FakeBackend, tmp_path: Path, x: np.ndarray) -> np.ndarray:
    config = Config(path)
    config.disable_gpu()
    config.set_engine_cache_dir(tmp_path / "cache")
    return Predictor(config, backend=backend).run_dict({"x": x})["y"]


def test_a_wrong_engine_the_emulation_cannot_see_is_caught_and_demoted(tmp_path: Path) -> None:
    # the fake's FP16 Add is wrong (adds 1): only a run of the engine shows it
    backend, builder = _builder(tmp_path, wrong_in_16_bit=["Add"])
    hybrid = convert(fp16_rounding(), _fp16(), builder=builder)
    engine = hybrid.report().engines[0]
    assert engine.accuracy_measured_by == "tensorrt"
    assert engine.accuracy_before[0]["rel_l2"] > 0.1
    assert [d[:3] for d in engine.accuracy_demoted] == [("add", "Add", "y")]
    assert engine.accuracy_after[0]["rel_l2"] < 5e-3
    x = np.random.default_rng(3).uniform(0, 1, (2, 16)).astype(np.float32)  # unseen
    want = ort.InferenceSession(fp16_rounding().SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = _y(hybrid.save(tmp_path / "model.onnx"), backend, tmp_path, x)
    assert float(np.linalg.norm(got - want) / np.linalg.norm(want)) < 5e-3
    # measured through ONNX Runtime only, the same fault ships: the emulation is right
    ort_only = convert(fp16_rounding(), _fp16()).report().engines[0]
    assert ort_only.accuracy_measured_by == "onnxruntime" and ort_only.accuracy_demoted == ()


def test_strict_accuracy_raises_for_a_wrong_engine_naming_it_and_the_output(
        tmp_path: Path) -> None:
    _, builder = _builder(tmp_path, wrong_in_16_bit=["Add"])
    with pytest.raises(AccuracyError, match=r"engine tensorrt_engine_0: output 'y' errs by "):
        convert(fp16_rounding(), _fp16(strict_accuracy=True), builder=builder)
    convert(fp16_rounding(), _fp16(strict_accuracy=True))  # the emulation passes it


def test_an_engine_that_fails_to_build_for_the_guard_is_measured_through_onnx_runtime(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    _, builder = _builder(tmp_path)
    build = builder.build

    def failing(name: str, *args: object) -> BuildResult:
        guard = name.endswith("(accuracy guard)")
        if guard:
            time.sleep(0.3)  # (a failed build takes time: the guard's time counts it)
            return BuildResult(error="out of memory")
        return build(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(builder, "build", failing)
    caplog.set_level(logging.WARNING, logger="hybridtrt")
    hybrid = convert(fp16_rounding(), _fp16(), builder=builder)
    engine = hybrid.report().engines[0]
    assert engine.accuracy_measured_by == "onnxruntime" and engine.accuracy_after
    assert engine.status == "built"
    assert hybrid.stage_seconds["accuracy guard"] >= 0.3
    assert "is checked against FP32 through ONNX Runtime's emulation of its lowered graph, " \
           "not through the engine: TensorRT cannot build it" in caplog.text


def test_the_logits_of_a_softmax_output_are_read_from_the_engine(tmp_path: Path) -> None:
    nodes = [h.make_node("MatMul", ["x", "w"], ["l"], name="fc"),
             h.make_node("Softmax", ["l"], ["y"], name="softmax", axis=-1)]
    w = numpy_helper.from_array(np.random.default_rng(0).normal(0, 3, (16, 4)).astype(np.float32),
                                "w")
    model = make(nodes, [f32("x", [2, 16])], [h.make_tensor_value_info("y", TensorProto.FLOAT,
                                                                       [2, 4])], [w])
    backend, builder = _builder(tmp_path)
    engine = convert(model, _fp16(), builder=builder).report().engines[0]
    assert engine.accuracy_measured_by == "tensorrt"
    assert [e["output"] for e in engine.accuracy_after] == ["y", "y (logits)"]
    built = [ops for name, ops in backend.calls if name == "build" and "Cast" in ops]
    assert built and built[0][-1] == "Cast"  # the logits' FP32 copy, an extra engine output


def test_an_int8_engine_is_checked_through_the_engine(tmp_path: Path) -> None:
    from tests.models import conv_classifier

    rng = np.random.default_rng(0)
    feeds = [{"x": rng.normal(0, 1, (1, 3, 16, 16)).astype(np.float32)} for _ in range(8)]
    backend, builder = _builder(tmp_path)
    config = TensorRTConfig(precision_mode="int8", calibration_data=feeds,
                            calibration_method="minmax",
                            inputs=[Input("x", warmup_data=[f["x"] for f in feeds[:3]])])
    engine = convert(conv_classifier(8, 16), config, builder=builder).report().engines[0]
    assert engine.accuracy_measured_by == "tensorrt" and engine.accuracy_after
    built = [ops for name, ops in backend.calls if name == "build"]
    assert built and all("QuantizeLinear" in ops for ops in built)
