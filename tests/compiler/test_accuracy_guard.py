"""The accuracy guard: lowered FP16/BF16 engines checked against FP32 on the warm-up inputs."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper as h
from onnx import numpy_helper

from hybridtrt import AccuracyError, ConfigError, Input, TensorRTConfig, convert
from hybridtrt.compiler.precision import accuracy
from hybridtrt.compiler.precision.lowp import Lowered
from hybridtrt.compiler.precision.stage import PrecisionStage
from hybridtrt.core.graph import GraphIndex
from hybridtrt.core.report import Report
from hybridtrt.runtime import Config, create_predictor
from tests import models
from tests.models import f32, fp16_rounding, make

_overflowing = models.fp16_overflow  # a Mul by 60000 undone by a Div: infinite in FP16


def _fp16(**settings: object) -> TensorRTConfig:
    # the range guard off: only the accuracy guard can see the overflow
    return TensorRTConfig(precision_mode="fp16", precision_guard=False, min_subgraph_size=1,
                          **settings)  # type: ignore[arg-type]


def _outputs(model: onnx.ModelProto, hybrid: object, tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The hybrid model's and ONNX Runtime's (on the original) ``y`` for inputs the guard never saw."""
    x = np.random.default_rng(7).uniform(0, 1, (2, 16)).astype(np.float32)
    predictor = create_predictor(Config(hybrid.save(tmp_path / "model.onnx")))  # type: ignore[attr-defined]
    got = predictor.run_dict({"x": x})["y"]
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    return got, want


def _rel_l2(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def test_the_guard_keeps_an_overflowing_node_fp32_and_the_report_names_it(tmp_path: Path) -> None:
    model = _overflowing()
    hybrid = convert(model, _fp16())
    got, want = _outputs(model, hybrid, tmp_path)
    assert np.all(np.isfinite(got)) and _rel_l2(got, want) < 1e-2
    engine = hybrid.report().engines[0]
    assert [d[:3] for d in engine.accuracy_demoted] == [("scale_up", "Mul", "y"),
                                                        ("scale_down", "Div", "y")]
    assert engine.accuracy_before[0]["rel_l2"] == float("inf")
    after = engine.accuracy_after[0]
    assert after["output"] == "y" and after["tolerance"] == 5e-3  # the FP16 default
    assert accuracy.within(after["rel_l2"], after["max_abs"], after["tolerance"])
    kept = {name: why for name, _, why in engine.fp32_nodes}
    assert kept["scale_up"] == ("accuracy guard: lowering it alone moved output 'y' by inf "
                                "(relative L2; tolerance 0.005)")
    assert "add" not in kept and "relu" not in kept and "shift" not in kept
    # 1 reference + 1 check, then per demotion: bisection (log2 of 5 nodes, rounded up) + alone + recheck
    assert engine.accuracy_runs <= 2 + 2 * (3 + 2)
    text = hybrid.report().render()
    assert "accuracy guard: keeps 2 more node(s) in FP32 (scale_up, scale_down): output 'y' " \
           "relative L2 inf -> " in text
    assert "scale_up (Mul): moved 'y' by inf" in text
    assert Report.from_dict(hybrid.report().to_dict()) == hybrid.report()
    assert "accuracy guard" in hybrid.stage_seconds


def test_without_the_check_the_overflow_ships(tmp_path: Path) -> None:
    model = _overflowing()
    hybrid = convert(model, _fp16(accuracy_check=False))
    got, _ = _outputs(model, hybrid, tmp_path)
    assert not np.all(np.isfinite(got))  # the guard above is what fixes it
    engine = hybrid.report().engines[0]
    assert engine.fp32_nodes == () and engine.accuracy_after == ()


def test_strict_accuracy_raises_naming_the_engine_and_the_output() -> None:
    with pytest.raises(AccuracyError, match=r"engine tensorrt_engine_0: output 'y' errs by inf "
                                            r"\(relative L2; max abs inf of its range\) against "
                                            r"FP32 on the warm-up inputs, beyond "
                                            r"accuracy_tolerance 0.005"):
        convert(_overflowing(), _fp16(strict_accuracy=True))


def test_a_per_output_tolerance_overrides_the_default(tmp_path: Path) -> None:
    model = fp16_rounding()
    loose = convert(model, _fp16()).report().engines[0]
    assert loose.accuracy_demoted == () and 1e-5 < loose.accuracy_after[0]["rel_l2"] < 5e-3
    hybrid = convert(model, _fp16(accuracy_tolerance={"y": 1e-6}))
    engine = hybrid.report().engines[0]
    assert engine.accuracy_after[0]["rel_l2"] <= 1e-6  # FP32 until within 1e-6
    kept = {name: why for name, _, why in engine.fp32_nodes}
    assert kept["mul"].startswith("accuracy guard: lowering it alone moved output 'y' by ")
    # one node kept did not halve the error (it is rounding everywhere): a prefix is kept at once
    assert "the fewest that, kept in FP32, bring the engine within tolerance" in kept["sin"]
    got, want = _outputs(model, hybrid, tmp_path)
    assert _rel_l2(got, want) < 1e-6


def test_the_guard_is_deterministic() -> None:
    hybrid = convert(_overflowing(), _fp16())
    assert hybrid.report().engines[0].accuracy_demoted  # (the guard ran and changed the model)
    first = hybrid.model.SerializeToString()
    assert convert(_overflowing(), _fp16()).model.SerializeToString() == first


def test_accuracy_settings_are_validated_and_hashed() -> None:
    with pytest.raises(ConfigError, match=r"accuracy_tolerance must be a positive number"):
        TensorRTConfig(precision_mode="fp16", accuracy_tolerance=-1)
    with pytest.raises(ConfigError, match=r"accuracy_tolerance\['y'\] must be a positive number"):
        TensorRTConfig(precision_mode="fp16", accuracy_tolerance={"y": "small"})
    with pytest.raises(ConfigError, match="apply to precision_mode FP16, BF16 or INT8"):
        TensorRTConfig(strict_accuracy=True)
    with pytest.raises(ConfigError, match="strict_accuracy=True needs accuracy_check=True"):
        TensorRTConfig(precision_mode="fp16", strict_accuracy=True, accuracy_check=False)
    with pytest.raises(ConfigError, match="accuracy_check must be True or False"):
        TensorRTConfig(precision_mode="fp16", accuracy_check="yes")
    hashes = {TensorRTConfig(precision_mode="bf16", **s).settings_hash() for s in (  # type: ignore[arg-type]
        {}, {"accuracy_tolerance": 0.05}, {"accuracy_check": False}, {"strict_accuracy": True})}
    assert len(hashes) == 4
    assert TensorRTConfig(precision_mode="bf16", accuracy_tolerance=5e-3).settings_hash() == \
        TensorRTConfig(precision_mode="bf16").settings_hash()


def _benchmark():
    """The benchmark module, which builds the classifier (loaded once, shared with other tests)."""
    if "precision_accuracy" not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "benchmarks" / "precision_accuracy.py"
        spec = importlib.util.spec_from_file_location("precision_accuracy", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["precision_accuracy"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules["precision_accuracy"]


def test_the_classifier_pattern_in_fp16_is_checked_and_keeps_fp32_top1(tmp_path: Path) -> None:
    bench = _benchmark()
    model = bench.tf_classifier()
    warm, test = bench.classifier_feeds(6, 0), bench.classifier_feeds(16, 100)
    config = TensorRTConfig(inputs=[Input(name="ids", warmup_data=[f["ids"] for f in warm])],
                            precision_mode="fp16")
    hybrid = convert(model, config)
    predictor = create_predictor(Config(hybrid.save(tmp_path / "fp16.onnx")))
    got = np.concatenate([predictor.run_dict(f)["probs"] for f in test])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = np.concatenate([session.run(None, f)[0] for f in test])
    assert np.array_equal(got.argmax(1), want.argmax(1))
    engines = [e for e in hybrid.report().engines if e.precision == "fp16"]
    assert engines and all(e.accuracy_after for e in engines)
    for engine in engines:
        assert all(accuracy.within(o["rel_l2"], o["max_abs"], o["tolerance"])
                   for o in engine.accuracy_after), engine


def test_the_pass_rule_is_relative_l2_or_max_abs_within_a_tenth_of_the_tolerance() -> None:
    assert accuracy.within(1e-2, 1.0, 1e-2) and accuracy.within(5.0, 1e-3, 1e-2)
    assert not accuracy.within(1.1e-2, 1.1e-3, 1e-2)
    assert accuracy.OutputError("y", 0.5, 1e-3, 1e-2).passed


def _shift(by: float) -> onnx.ModelProto:
    weights = [numpy_helper.from_array(np.full(16, by, np.float32), "c")]
    return make([h.make_node("Add", ["x", "c"], ["y"], name="add")], [f32("x", [2, 16])],
                [f32("y", [2, 16])], weights)


def _feeds() -> list[dict[str, np.ndarray]]:
    return [{"x": np.random.default_rng(0).uniform(0, 1, (2, 16)).astype(np.float32)}]


def test_an_engine_beyond_tolerance_with_every_node_fp32_is_warned(caplog) -> None:
    # an engine whose FP32 form already differs (nothing left to demote)
    with caplog.at_level(logging.WARNING, logger="hybridtrt"):
        checked = accuracy.check(_shift(1.0), lambda keep: Lowered(_shift(2.0), (), ()), {},
                                 _feeds(), set(), lambda name: 1e-2, "engine_9", False)
    assert checked is not None and not checked.after[0].passed and checked.demoted == ()
    assert "engine engine_9 stays beyond accuracy_tolerance with every node in FP32: output " \
           "'y' errs by " in caplog.text


def test_an_engine_onnx_runtime_cannot_run_is_not_checked_and_warned(caplog) -> None:
    broken = _shift(1.0)
    broken.graph.node[0].op_type = "NoSuchOp"
    with caplog.at_level(logging.WARNING, logger="hybridtrt"):
        checked = accuracy.check(broken, lambda keep: Lowered(broken, (), ()), {}, _feeds(), set(),
                                 lambda name: 1e-2, "engine_9", False)
    assert checked is None
    assert "engine engine_9 is not checked against FP32: ONNX Runtime cannot run it on the " \
           "CPU" in caplog.text


def test_an_engine_without_warm_up_values_is_not_checked_and_warned(caplog) -> None:
    model = fp16_rounding()
    stage = PrecisionStage(GraphIndex(model), [], _fp16())  # no warm-up runs
    with caplog.at_level(logging.WARNING, logger="hybridtrt"):
        typed = stage.apply(model, "engine_9/", "engine_9")
    assert "accuracy" not in typed.info and typed.info["mode"] == "fp16"
    assert "engine engine_9 is not checked against FP32: the values of its inputs in the " \
           "warm-up runs are unknown" in caplog.text
