"""The Predictor on the CPU: both API shapes, placement, segments, errors, threads, real models."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as h
from onnx import numpy_helper
import pytest

import hybridtrt
from hybridtrt import Input, InputError, TensorRTConfig, convert
from hybridtrt.errors import FormatError, IncompatibleEngineError
from hybridtrt.examples import onnx_light_model
from hybridtrt.runtime import Config, Predictor, create_predictor
from hybridtrt.runtime import checks
from tests import models
from tests.suites import ort_run, paddleocr_models

DYNAMIC = TensorRTConfig(
    inputs=[Input("x", min_input_shape=[1, 4], optim_input_shape=[2, 4], max_input_shape=[8, 4])],
    disable_ops=["Sin"],
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(models.split_chain(), DYNAMIC).save(tmp_path_factory.mktemp("m") / "m.onnx")


def predictor(path: Path, isolated: bool = False) -> Predictor:
    config = Config(path)
    config.isolate_engines(isolated)
    return create_predictor(config)


@pytest.mark.parametrize("isolated", [False, True])
def test_onnx_runtime_style_run_matches_the_original(saved: Path, isolated: bool) -> None:
    runner = predictor(saved, isolated)
    for batch in (1, 5, 8):
        x = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
        got = runner.run_dict({"x": x})
        np.testing.assert_allclose(got["y"], ort_run(models.split_chain(), {"x": x})[0], rtol=1e-6)


def test_paddle_style_handles_match_the_original(saved: Path) -> None:
    runner = predictor(saved)
    assert runner.get_input_names() == ["x"] and runner.get_output_names() == ["y"]
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    handle = runner.get_input_handle("x")
    handle.reshape([3, 4])
    handle.copy_from_cpu(x)
    assert runner.run() == []
    out = runner.get_output_handle("y").copy_to_cpu()
    np.testing.assert_allclose(out, ort_run(models.split_chain(), {"x": x})[0], rtol=1e-6)


def test_inputs_and_outputs_are_described_like_onnx_runtime(saved: Path) -> None:
    runner = predictor(saved)
    (x,) = runner.get_inputs()
    (y,) = runner.get_outputs()
    assert (x.name, x.type, x.shape, x.dtype) == ("x", "tensor(float)", ["N", 4], np.float32)
    assert y.name == "y"
    assert runner.get_providers() == ["CPUExecutionProvider"]  # (no engine runs in TensorRT here)


def test_optional_and_sequence_inputs_are_described_as_onnx_runtime_spells_them() -> None:
    from onnx import TensorProto, helper

    from hybridtrt.runtime.description import node_arg

    tensor = helper.make_tensor_type_proto(TensorProto.FLOAT, [2])
    optional = helper.make_value_info("o", helper.make_optional_type_proto(tensor))
    sequence = helper.make_value_info("s", helper.make_sequence_type_proto(tensor))
    assert [node_arg(v).type for v in (optional, sequence)] == ["optional(tensor(float))",
                                                                "seq(tensor(float))"]


@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory: pytest.TempPathFactory) -> tuple[onnx.ModelProto, Path]:
    """A real CNN and its saved hybrid model."""
    source = onnx.load(str(onnx_light_model("squeezenet")))
    saved = convert(source, TensorRTConfig(inputs=[])).save(tmp_path_factory.mktemp("sq") / "m.onnx")
    return source, saved


def test_run_is_a_drop_in_for_onnx_runtime_sessions(squeezenet: tuple[onnx.ModelProto, Path]) -> None:
    import onnxruntime as ort

    source, saved = squeezenet
    session = ort.InferenceSession(source.SerializeToString(), providers=["CPUExecutionProvider"])
    runner = predictor(saved)
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    for got, want in ((runner.run(None, {name: x}), session.run(None, {name: x})),
                      (runner.run([output], {name: x}), session.run([output], {name: x})),
                      (runner.run([output, output], {name: x}, ort.RunOptions()),
                       session.run([output, output], {name: x}))):
        assert isinstance(got, list) and len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert set(runner.run_dict({name: x})) == set(runner({name: x})) == {output}
    for ours, theirs in ((runner.get_inputs(), session.get_inputs()),
                         (runner.get_outputs(), session.get_outputs())):
        assert [(a.name, a.type, a.shape) for a in ours] == [(a.name, a.type, a.shape) for a in theirs]
    meta, want_meta = runner.get_modelmeta(), session.get_modelmeta()
    assert (meta.producer_name, meta.graph_name, meta.domain, meta.version,
            meta.custom_metadata_map) == (want_meta.producer_name, want_meta.graph_name,
                                          want_meta.domain, want_meta.version,
                                          want_meta.custom_metadata_map)
    assert runner.get_providers() == session.get_providers()  # (CPU, no TensorRT here)


def test_run_names_unknown_outputs_and_feeds_given_first(saved: Path) -> None:
    runner = predictor(saved)
    x = np.ones((2, 4), np.float32)
    with pytest.raises(InputError, match=r"unknown outputs \['z'\] \(the model's outputs are \['y'\]\)"):
        runner.run(["z"], {"x": x})
    with pytest.raises(InputError, match=r"unknown outputs \['z'\]"):
        runner.run_dict({"x": x}, ["z"])
    with pytest.raises(InputError, match=r"run\(None, feeds\), or run_dict\(feeds\)"):
        runner.run({"x": x})  # type: ignore[arg-type]  # (the dict form, before ORT's order)
    with pytest.raises(InputError, match="needs input_feed"):
        runner.run(["y"])


def test_fallback_engines_are_inlined_into_one_session_by_default(saved: Path) -> None:
    runner = predictor(saved)
    assert [(s.kind, s.name) for s in runner.plan.segments] == [("ort", "ort_segment_0")]


def test_isolated_engines_each_run_where_tensorrt_would(saved: Path) -> None:
    runner = predictor(saved, isolated=True)
    assert [(s.kind, s.name, s.inputs, s.outputs) for s in runner.plan.segments] == [
        ("engine", "tensorrt_engine_0", ("x",), ("c",)),
        ("ort", "ort_segment_1", ("c",), ("d",)),
        ("engine", "tensorrt_engine_1", ("d", "c"), ("y",)),
    ]
    # "x" is freed after segment 0, "c" after segment 2, "d" after segment 2.
    assert runner.plan.last_use == {"x": 0, "c": 2, "d": 2}


def test_engine_status_says_where_each_engine_runs_and_why(saved: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hybridtrt"):
        runner = predictor(saved)
        runner.clone()
    status = runner.engine_status()
    assert [(s.name, s.runs_in) for s in status] == [
        ("tensorrt_engine_0", "onnxruntime"), ("tensorrt_engine_1", "onnxruntime")]
    assert all("TensorRT is turned off" in s.reason for s in status)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2  # once per engine, not again for the clone
    assert warnings[0].startswith("engine tensorrt_engine_0 runs in ONNX Runtime (inlined): ")


def test_require_tensorrt_turns_the_fallback_into_an_error(saved: Path) -> None:
    config = Config(saved)
    config.require_tensorrt()
    with pytest.raises(IncompatibleEngineError,
                       match="TensorRT is required but these engines cannot use it: "
                             "tensorrt_engine_0: TensorRT is turned off"):
        create_predictor(config)


def test_missing_and_extra_inputs_are_named_at_once(saved: Path) -> None:
    with pytest.raises(InputError, match=r"missing inputs \['x'\]; unknown inputs \['a', 'b'\]"):
        predictor(saved).run_dict({"a": np.zeros(1), "b": np.zeros(1)})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros((2, 4), np.float64), "input 'x' has dtype float64; the model expects float32"),
        (np.zeros((2, 4, 1), np.float32), r"input 'x' has rank 3 \(shape \[2, 4, 1\]\); the model expects rank 2"),
        (np.zeros((2, 5), np.float32), "input 'x' dimension 1 is 5; the model fixes it to 4"),
        (np.zeros((9, 4), np.float32),
         r"engine tensorrt_engine_0 was built for x: \[1, 4\]..\[8, 4\]; got x: \[9, 4\]"),
    ],
)
@pytest.mark.parametrize("isolated", [False, True])
def test_bad_inputs_are_clear_errors(saved: Path, value: np.ndarray, message: str, isolated: bool) -> None:
    with pytest.raises(InputError, match=message):
        predictor(saved, isolated).run_dict({"x": value})


@pytest.mark.parametrize(("value", "got"), [(None, "None"), ((1.0, 2.0, 3.0, 4.0), "tuple")])
@pytest.mark.parametrize("isolated", [False, True])
def test_none_and_tuple_inputs_are_named_as_what_they_are(saved: Path, value: object, got: str,
                                                          isolated: bool) -> None:
    with pytest.raises(InputError) as caught:
        predictor(saved, isolated).run(None, {"x": value})
    assert str(caught.value) == (f"input 'x' is a tensor (tensor(float), shape ['N', 4]); "
                                 f"got {got}: pass a numpy array")


def test_a_one_segment_plan_names_a_none_input_too(tmp_path: Path) -> None:
    model = models.make([h.make_node("Relu", ["x"], ["y"])], [models.f32("x", [2, 4])],
                        [models.f32("y", [2, 4])])
    runner = predictor(convert(model, TensorRTConfig()).save(tmp_path / "m.onnx"))
    runner.run(None, {"x": np.zeros((2, 4), np.float32)})  # (a signature that passed first)
    with pytest.raises(InputError, match=r"input 'x' is a tensor .*; got None"):
        runner.run(None, {"x": None})


def test_an_input_handle_names_a_copy_of_the_wrong_size(saved: Path) -> None:
    handle = predictor(saved).get_input_handle("x")
    handle.reshape([3, 4])
    handle.copy_from_cpu(np.zeros(12, np.float32))  # (the same size: reshaped to [3, 4])
    assert handle.shape() == [3, 4]
    with pytest.raises(InputError) as caught:
        handle.copy_from_cpu(np.zeros((2, 5), np.float32))
    assert str(caught.value).startswith(
        "input 'x' was reshaped to [3, 4], but copy_from_cpu got an array of shape [2, 5] "
        "(10 values)")


def test_handles_reject_unknown_names_and_early_reads(saved: Path) -> None:
    runner = predictor(saved)
    with pytest.raises(InputError, match="'z' is not a model input"):
        runner.get_input_handle("z")
    with pytest.raises(InputError, match="call predictor.run"):
        runner.get_output_handle("y").copy_to_cpu()


def test_tampered_and_newer_files_are_refused(saved: Path, tmp_path: Path) -> None:
    model = onnx.load(str(saved))
    for prop in model.metadata_props:
        if prop.key == "hybridtrt.format_version":
            prop.value = "2"
    onnx.save(model, str(tmp_path / "newer.onnx"))
    with pytest.raises(FormatError, match="format version 2"):
        predictor(tmp_path / "newer.onnx")


def test_clones_in_threads_give_identical_results(saved: Path) -> None:
    base = predictor(saved, isolated=True)
    x = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    want = base.run_dict({"x": x})["y"]
    results: list[np.ndarray] = []
    lock = threading.Lock()

    def work(clone: Predictor) -> None:
        for _ in range(20):
            y = clone.run_dict({"x": x})["y"]
            with lock:
                results.append(y)

    threads = [threading.Thread(target=work, args=(base.clone(),)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80
    assert all(np.array_equal(r, want) for r in results)


OCR = {
    "det": (([1, 3, 64, 64], [1, 3, 320, 320], [1, 3, 640, 640]),
            [[1, 3, 64, 64], [1, 3, 256, 480], [1, 3, 640, 640]], [1, 3, 672, 640]),
    "rec": (([1, 3, 48, 32], [1, 3, 48, 320], [4, 3, 48, 1280]),
            [[1, 3, 48, 32], [2, 3, 48, 200], [4, 3, 48, 1280]], [1, 3, 48, 1600]),
}


@pytest.mark.parametrize("kind", ["det", "rec"])
def test_paddleocr_inside_the_profile_matches_and_outside_is_refused(kind: str, tmp_path: Path) -> None:
    (lo, opt, hi), inside, outside = OCR[kind]
    path = paddleocr_models()[kind]
    saved = convert(path, TensorRTConfig(inputs=[Input("x", lo, opt, hi)])).save(tmp_path / "h.onnx")
    original = onnx.load(str(path))
    rng = np.random.default_rng(1)
    for isolated in (False, True):
        runner = predictor(saved, isolated)
        for shape in inside:
            x = rng.uniform(0, 1, shape).astype(np.float32)
            np.testing.assert_allclose(runner.run_dict({"x": x})[runner.get_output_names()[0]],
                                       ort_run(original, {"x": x})[0], rtol=1e-4, atol=1e-5)
        with pytest.raises(InputError, match="engine tensorrt_engine_0 was built for x"):
            runner.run_dict({"x": np.zeros(outside, np.float32)})


def test_a_model_without_engines_runs_too(tmp_path: Path) -> None:
    hybrid = convert(models.split_chain(batch=2), TensorRTConfig(disable_ops=["Relu", "Add", "Mul"]))
    assert hybrid.engines == ()
    runner = predictor(hybrid.save(tmp_path / "m.onnx"))
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(runner.run_dict({"x": x})["y"], ort_run(models.split_chain(2), {"x": x})[0])
    assert hybridtrt.load(tmp_path / "m.onnx").engines == ()


def test_profile_checks_are_remembered_per_input_shapes_and_still_refuse_new_ones(
        saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = predictor(saved)
    fits: list[int] = []
    select = checks.select_profile
    monkeypatch.setattr(checks, "select_profile", lambda *a: fits.append(1) or select(*a))
    runner.run_dict({"x": np.ones((2, 4), np.float32)})
    runner.run_dict({"x": np.ones((2, 4), np.float32)})
    assert fits == [1]  # the same shapes are checked once
    for _ in range(2):  # a refused shape is not remembered: refused again
        with pytest.raises(InputError, match="engine tensorrt_engine_0 was built for"):
            runner.run_dict({"x": np.ones((64, 4), np.float32)})
    assert fits == [1, 1, 1]


def test_checks_skipped_for_known_inputs_still_catch_new_ones(saved: Path) -> None:
    runner = predictor(saved)
    runner.run_dict({"x": np.ones((2, 4), np.float32)})
    runner.run_dict({"x": np.ones((2, 4), np.float32)})  # the fast path
    with pytest.raises(InputError, match="has dtype float64; the model expects float32"):
        runner.run_dict({"x": np.ones((2, 4), np.float64)})
    with pytest.raises(InputError, match="has rank 1"):
        runner.run_dict({"x": np.ones(4, np.float32)})
    with pytest.raises(InputError, match="missing inputs"):
        runner.run_dict({})


def test_segments_export_only_what_is_read_later(tmp_path: Path) -> None:
    """A Constant read by ORT nodes on both sides of an engine is copied into the later
    segment, so the segment holding the Constant node does not export it (a copy per run)."""
    nodes = [h.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.float32(2.0))),
             h.make_node("Pow", ["x", "c"], ["p"]), h.make_node("Relu", ["p"], ["r"]),
             h.make_node("Pow", ["r", "c"], ["y"])]
    model = models.make(nodes, [models.f32("x", [3])], [models.f32("y", [3])])
    config = TensorRTConfig(disable_ops=["Pow", "Constant"], min_subgraph_size=1)
    settings = Config(convert(model, config).save(tmp_path / "m.onnx"))
    settings.isolate_engines(True)
    runner = create_predictor(settings)
    segments = runner.segments()
    assert [s.kind for s in segments] == ["ort", "engine", "ort"]
    assert segments[0].outputs == ("p",) and [o.name for o in segments[0].model.graph.output] == ["p"]
    x = np.array([1, -2, 3], np.float32)
    np.testing.assert_allclose(runner.run_dict({"x": x})["y"], ort_run(model, {"x": x})[0])


def test_a_one_segment_plan_runs_the_short_way_with_the_same_results_and_errors(
        tmp_path: Path) -> None:
    nodes = [h.make_node("Relu", ["x"], ["r"]), h.make_node("Reshape", ["r", "s"], ["y"])]
    model = models.make(nodes, [models.f32("x", [2, 4]), h.make_tensor_value_info(
        "s", onnx.TensorProto.INT64, [2])], [models.f32("y", ["a", "b"])])
    runner = predictor(convert(model, TensorRTConfig()).save(tmp_path / "m.onnx"))
    assert [s.kind for s in runner.segments()] == ["ort"]  # one ORT segment
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    feeds = {"x": x, "s": np.array([4, 2], np.int64)}
    short, general = runner.run_dict(feeds), runner.run_dict(feeds, ["y"])  # (names given: the usual way)
    np.testing.assert_array_equal(short["y"], general["y"])
    np.testing.assert_array_equal(short["y"], ort_run(model, feeds)[0])
    with pytest.raises(hybridtrt.ExecutionError, match="segment ort_segment_0 failed: .*Reshape"):
        runner.run_dict({"x": x, "s": np.array([3, -1], np.int64)})
    with pytest.raises(InputError, match=r"missing inputs \['s'\]"):
        runner.run_dict({"x": x})


def test_the_short_way_checks_only_arrays_unlike_those_that_passed_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once host arrays passed every check, arrays of the same dtypes and shapes (C order) go
    straight to the session; others are checked again, errors included."""
    model = models.make([h.make_node("Relu", ["x"], ["y"])], [models.f32("x", [2, 4])],
                        [models.f32("y", [2, 4])])
    runner = predictor(convert(model, TensorRTConfig()).save(tmp_path / "m.onnx"))
    checked: list[int] = []
    check = runner.input_checks.accepted
    monkeypatch.setattr(runner.input_checks, "accepted",
                        lambda feeds: checked.append(1) or check(feeds))
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.standard_normal((2, 4)).astype(np.float32)
        np.testing.assert_array_equal(runner.run_dict({"x": x})["y"], ort_run(model, {"x": x})[0])
    assert checked == [1]
    for other, refused in ((x.astype(np.float64), True), (np.asfortranarray(x), False),
                           (rng.standard_normal((3, 4)).astype(np.float32), True)):
        checked.clear()
        if refused:
            with pytest.raises(InputError):
                runner.run_dict({"x": other})
        else:
            np.testing.assert_array_equal(runner.run_dict({"x": other})["y"], np.maximum(other, 0))
        assert checked == [1]


def test_graph_status_says_why_no_segment_is_captured_on_the_cpu(saved: Path) -> None:
    """Graphs are off on the CPU; a segment that could not be captured anyway says what stops it
    (computed from its model alone)."""
    runner = predictor(saved, isolated=True)
    status = runner.graph_status()
    assert [s.segment for s in status] == [s.name for s in runner.segments()]
    off = "CUDA graphs are off (config.enable_cuda_graph())"
    assert [(s.captured, s.reason) for s in status] == [
        (False, off), (False, "node 'sin' (Sin) cannot be captured"), (False, off)]


@pytest.mark.parametrize("isolated", [False, True])
def test_engine_status_says_whether_the_segments_each_engine_runs_in_are_captured(
        saved: Path, isolated: bool) -> None:
    runner = predictor(saved, isolated=isolated)
    graphs = {p.name: p.graphs for p in runner.engine_status()}
    by_segment = {s.segment: s for s in runner.graph_status()}
    if isolated:  # each engine in its own segment
        assert graphs == {name: (by_segment[name],) for name in graphs}
    else:  # both inlined into the one segment, which the Sin between them keeps from capture
        (segment,) = runner.graph_status()
        assert segment.reason == "node 'sin' (Sin) cannot be captured"
        assert graphs == {"tensorrt_engine_0": (segment,), "tensorrt_engine_1": (segment,)}
