"""The Predictor on a CUDA GPU: same results as plain ONNX Runtime CUDA, values stay on the device.

Skipped where ONNX Runtime has no CUDA provider (CI has no GPU). Run on a GPU host with
onnxruntime-gpu, cuda-python and cupy: ``python -m pytest tests/gpu -q -s``.
"""

from __future__ import annotations

import collections
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest

import hybridtrt
from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.demo import gpu_usable
from hybridtrt.examples import onnx_light_model
from hybridtrt.runtime import Config, Predictor, create_predictor
from hybridtrt.runtime.plan import SegmentSpec
from tests import models
from tests.suites import (
    backend_node_cases,
    lower_for_ort,
    onnx_light_cnns,
    ort_run,
    outputs_match,
    paddleocr_models,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not gpu_usable(), reason="needs a CUDA GPU with onnxruntime-gpu and cuda-python"),
]
CUDA = "CUDAExecutionProvider"
DYNAMIC = TensorRTConfig(
    inputs=[Input("x", min_input_shape=[1, 4], optim_input_shape=[2, 4], max_input_shape=[8, 4])],
    disable_ops=["Sin"],
)


def gpu_predictor(path: Path, isolated: bool) -> Predictor:
    config = Config(path)
    config.enable_use_gpu(0, 0)
    config.isolate_engines(isolated)
    return create_predictor(config)


@pytest.mark.parametrize("isolated", [False, True])
def test_values_stay_on_the_gpu_between_segments(tmp_path: Path, isolated: bool) -> None:
    runner = gpu_predictor(convert(models.split_chain(), DYNAMIC).save(tmp_path / "m.onnx"), isolated)
    assert len(runner.plan.segments) == (3 if isolated else 1)
    rng = np.random.default_rng(0)
    for run in range(4):  # binds afresh, then into bound buffers, then replays that run
        x = rng.standard_normal((5, 4)).astype(np.float32)
        before = runner.run_stats()
        y = runner.run_dict({"x": x})["y"]
        after = runner.run_stats()
        if isolated:
            assert (after.bound_runs - before.bound_runs, after.replays - before.replays) == [
                (0, 0), (3, 0), (0, 1), (0, 1)][run]
        # one copy in (x) and one out (y), however many segments lie between
        assert after.host_copies - before.host_copies == 2
        assert after.foreign_outputs == 0
        np.testing.assert_allclose(y, ort_run(models.split_chain(), {"x": x})[0], rtol=1e-5,
                                   atol=1e-6)
    # the first segment's runs skipped ORT's stream sync: the next one queues behind them
    assert runner.run_stats().unsynced_runs == (2 if isolated else 0)
    # Device outputs of replayed runs are copies: the next run does not overwrite them.
    xs = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(2)]
    kept = [runner.run_dict({"x": x}, device_outputs=True)["y"] for x in xs]
    for x, out in zip(xs, kept):
        host = out.get() if hasattr(out, "get") else runner.device.to_host(out)
        np.testing.assert_allclose(host, ort_run(models.split_chain(), {"x": x})[0], rtol=1e-5,
                                   atol=1e-6)


def test_dlpack_inputs_and_device_outputs_need_no_host_copy(tmp_path: Path) -> None:
    cupy = pytest.importorskip("cupy")
    torch = pytest.importorskip("torch")
    runner = gpu_predictor(convert(models.split_chain(), DYNAMIC).save(tmp_path / "m.onnx"), True)
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    want = ort_run(models.split_chain(), {"x": x})[0]
    kept = []
    for device_input in (cupy.asarray(x), torch.from_numpy(x).cuda(), cupy.asarray(-x)):
        before = runner.run_stats().host_copies
        out = runner.run_dict({"x": device_input}, device_outputs=True)["y"]
        assert runner.run_stats().host_copies == before
        assert isinstance(out, cupy.ndarray)
        kept.append(out)
    # Outputs handed out stay valid: later runs, bound to fixed buffers, do not overwrite them.
    for out in kept[:2]:
        np.testing.assert_allclose(cupy.asnumpy(out), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(torch.as_tensor(out, device="cuda").cpu().numpy(), want,
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cupy.asnumpy(kept[2]), ort_run(models.split_chain(), {"x": -x})[0],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", list(onnx_light_cnns()), ids=lambda c: c.name)
def test_onnx_cnns_on_cuda_match_plain_onnx_runtime_cuda(case: object, tmp_path: Path) -> None:
    model = lower_for_ort(case.model)  # type: ignore[attr-defined]
    want = ort_run(model, case.inputs, CUDA)  # type: ignore[attr-defined]
    saved = convert(model, TensorRTConfig(min_subgraph_size=1)).save(tmp_path / "m.onnx")
    for isolated in (False, True):
        got = gpu_predictor(saved, isolated).run_dict(dict(case.inputs))  # type: ignore[attr-defined]
        assert outputs_match(list(got.values()), want, 1e-3, 1e-4)


@pytest.mark.parametrize("kind", ["det", "rec"])
def test_paddleocr_on_cuda_matches_plain_onnx_runtime_cuda(kind: str, tmp_path: Path) -> None:
    path = paddleocr_models()[kind]
    shapes = {"det": ([1, 3, 64, 64], [1, 3, 320, 320], [1, 3, 640, 640]),
              "rec": ([1, 3, 48, 32], [1, 3, 48, 320], [4, 3, 48, 1280])}[kind]
    config = TensorRTConfig(inputs=[Input("x", *shapes)],
                            disable_ops=["Resize"] if kind == "det" else ["Softmax"])
    saved = convert(path, config).save(tmp_path / "h.onnx")
    original = onnx.load(str(path))
    rng = np.random.default_rng(2)
    for isolated in (False, True):
        runner = gpu_predictor(saved, isolated)
        for shape in [*shapes, *shapes, *shapes]:  # then bound buffers, then replays; new inputs
            x = rng.uniform(0, 1, shape).astype(np.float32)
            got = runner.run_dict({"x": x})[runner.get_output_names()[0]]
            # ORT's CUDA convolutions use TF32 and pick their algorithms per session: one element
            # in millions differed by 1.6e-3 (relative) on an H100
            np.testing.assert_allclose(got, ort_run(original, {"x": x}, CUDA)[0], rtol=3e-3,
                                       atol=1e-4)
        if isolated:  # segments but the last skipped ORT's stream sync (``unsynced_safe``)
            stats = runner.run_stats()
            assert stats.unsynced_runs > 0 and stats.foreign_outputs == 0
            # rec's shape values, which ORT computes on the host, are handed over in host
            # memory (``placement``): bound to host buffers (a run with a bound signature), no
            # copy to the device and back; and a fresh run (a new predictor's first) binds them
            # to the host as well
            x = rng.uniform(0, 1, shapes[1]).astype(np.float32)
            kept = host_handovers(runner, x)
            assert bool(kept) == (kind == "rec")
            assert host_handovers(gpu_predictor(saved, True), x) == kept


class _Places:
    """Where each segment output of the observed runs lies (ORT values: "cpu" or "cuda")."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def before(self, position: int, spec: SegmentSpec) -> None:
        return None

    def after(self, position: int, spec: SegmentSpec, inputs: object, outputs: list) -> None:
        self.seen.update((n, v.device_name().lower()) for n, v in zip(spec.outputs, outputs)
                         if callable(getattr(v, "device_name", None)))


def host_handovers(predictor: Predictor, x: np.ndarray) -> set[str]:
    """The values one observed run hands from segment to segment in host memory."""
    places = _Places()
    predictor.set_segment_observer(places)
    predictor.run_dict({predictor.get_input_names()[0]: x})
    predictor.set_segment_observer(None)
    outputs = set(predictor.get_output_names())  # (those ORT copies back within the run)
    return {n for n, where in places.seen.items() if where == "cpu" and n not in outputs}


def test_paddle_style_handles_and_clones_in_threads_on_cuda(tmp_path: Path) -> None:
    """The Paddle-style API on the GPU (handles, isolated engines), and clones run in threads:
    the outputs of plain ORT CUDA, the same in every thread."""
    import threading

    path = paddleocr_models()["det"]
    config = TensorRTConfig(inputs=[Input("x", [1, 3, 64, 64], [1, 3, 320, 320], [1, 3, 640, 640])],
                            disable_ops=["Resize"])
    saved = convert(path, config).save(tmp_path / "det.onnx")
    x = np.random.default_rng(5).uniform(0, 1, (1, 3, 256, 320)).astype(np.float32)
    want = ort_run(onnx.load(str(path)), {"x": x}, CUDA)[0]

    def paddle_run(predictor: Predictor) -> np.ndarray:
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.reshape(list(x.shape))
        handle.copy_from_cpu(x)
        predictor.run()
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

    first = gpu_predictor(saved, True)
    np.testing.assert_allclose(paddle_run(first), want, rtol=3e-3, atol=1e-4)
    found: dict[int, list[np.ndarray]] = {}

    def worker(index: int) -> None:
        clone = first.clone()
        found[index] = [paddle_run(clone) for _ in range(4)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(found) == [0, 1, 2, 3]
    for outputs in found.values():
        for out in outputs:
            np.testing.assert_allclose(out, want, rtol=3e-3, atol=1e-4)


@pytest.mark.slow
def test_backend_node_cases_on_cuda(tmp_path: Path) -> None:
    cupy = pytest.importorskip("cupy")
    logging.getLogger("hybridtrt").setLevel(logging.ERROR)
    counts: collections.Counter[str] = collections.Counter()
    problems = []
    for case in backend_node_cases():
        values = [*case.inputs.values(), *(case.expected or [])]
        if not all(isinstance(v, np.ndarray) and v.dtype.kind not in "OUS" for v in values):
            counts["not tensors (CPU only)"] += 1
            continue
        model = lower_for_ort(case.model)
        try:
            onnx.checker.check_model(model)
            want = ort_run(model, case.inputs, CUDA)
            ok = outputs_match(want, case.expected, case.rtol, case.atol)
        except Exception:  # noqa: BLE001 - plain ORT cannot run every case
            ok = False
        counts["cases"] += 1
        if not ok:
            continue
        counts["plain ORT CUDA passes"] += 1
        print(f"case {case.name}", flush=True)  # names the culprit if the process dies
        inputs = [Input(k, warmup_data=[v]) for k, v in case.inputs.items() if isinstance(v, np.ndarray)]
        try:
            saved = convert(model, TensorRTConfig(inputs=inputs, min_subgraph_size=1)).save(
                tmp_path / f"{case.name}.onnx")
            runner = gpu_predictor(saved, False)
            got = runner.run_dict(dict(case.inputs))
            del runner  # teardown too (ORT once aborted freeing pinned memory here)
            isolated = gpu_predictor(saved, True)
            # Isolated, outputs kept on the device: the second run goes through bound buffers,
            # the third is a replay where the plan has several segments.
            runs = [isolated.run_dict(dict(case.inputs), device_outputs=True) for _ in range(3)]
            on_host = [[cupy.asnumpy(v) for v in r.values()] for r in runs]
            stats = isolated.run_stats()
            counts["second runs bound"] += stats.bound_runs > 0
            counts["third runs replayed"] += stats.replays > 0
            counts["with runs unsynced"] += stats.unsynced_runs > 0
            del isolated
            if all(outputs_match(o, want, case.rtol, case.atol)
                   for o in [list(got.values()), *on_host]):
                counts["through hybridtrt"] += 1
            else:
                problems.append(f"{case.name}: outputs differ")
        except hybridtrt.HybridTRTError as exc:
            problems.append(f"{case.name}: {exc}")
    print(f"\nbackend node cases on CUDA: {dict(counts)}")
    assert not problems, "\n".join(problems[:40])
    assert counts["through hybridtrt"] == counts["plain ORT CUDA passes"] > 1000
    assert counts["second runs bound"] > 1000  # the rest have data-dependent output shapes
    assert counts["third runs replayed"] > 0


@pytest.mark.parametrize("data_dependent", [False, True])
def test_engine_segments_keep_values_on_the_gpu(tmp_path: Path, data_dependent: bool) -> None:
    """TensorRT segments on CUDA, TensorRT replaced at its narrow interface by fake engines that
    read and write the device addresses the segment binds (through cupy): checks the CUDA
    device's engine memory (input addresses, ORT CUDA output buffers, allocator outputs, the
    shared stream), not TensorRT itself."""
    pytest.importorskip("cupy")
    from hybridtrt.trt.builder import TensorRTBuilder
    from hybridtrt.trt.cache import EngineCache
    from tests.fake_tensorrt import FakeBackend

    backend = FakeBackend(on_gpu=True, data_dependent=data_dependent)
    builder = TensorRTBuilder(backend, EngineCache(tmp_path / "cache"))
    path = convert(models.split_chain(), DYNAMIC, builder=builder).save(tmp_path / "m.onnx")
    config = Config(path)
    config.enable_use_gpu(0, 0)
    config.set_engine_cache_dir(tmp_path / "cache")
    runner = Predictor(config, backend=backend)
    assert [s.kind for s in runner.plan.segments] == ["engine", "ort", "engine"]
    assert {p.runs_in for p in runner.engine_status()} == {"tensorrt"}
    for batch in (5, 2, 8):
        x = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
        before = runner.run_stats().host_copies
        y = runner.run_dict({"x": x})["y"]
        assert runner.run_stats().host_copies - before == 2
        assert runner.run_stats().foreign_outputs == 0
        np.testing.assert_allclose(y, ort_run(models.split_chain(), {"x": x})[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("isolated", [False, True])
def test_cuda_graphs_replay_with_new_inputs_and_match_plain_onnx_runtime(
        isolated: bool, tmp_path: Path) -> None:
    """resnet50, det and rec with CUDA graphs, two input shapes taken in turns (each keeps its
    graph), new inputs every run, against plain ORT CUDA on the original model."""
    import onnxruntime as ort

    from hybridtrt.runtime.graphs import graph_model, graph_safe

    cases = [("resnet50", onnx.load(str(onnx_light_model("resnet50"))),
              TensorRTConfig(disable_ops=["MaxPool", "AveragePool"]), "gpu_0/data_0",
              [[1, 3, 224, 224]])]
    ocr = paddleocr_models()
    if "det" in ocr:
        cases.append(("det", onnx.load(str(ocr["det"])), TensorRTConfig(
            inputs=[Input("x", [1, 3, 64, 64], [1, 3, 320, 320], [1, 3, 640, 640])],
            disable_ops=["Resize"]), "x", [[1, 3, 320, 320], [1, 3, 256, 192]]))
    if "rec" in ocr:
        cases.append(("rec", onnx.load(str(ocr["rec"])), TensorRTConfig(
            inputs=[Input("x", [1, 3, 48, 32], [1, 3, 48, 320], [4, 3, 48, 1280])],
            disable_ops=["Softmax"]), "x", [[1, 3, 48, 320], [2, 3, 48, 160]]))
    rng = np.random.default_rng(5)
    for label, model, config_, name, shapes in cases:
        config = Config(convert(model, config_).save(tmp_path / f"{label}.onnx"))
        config.enable_use_gpu(0, 0)
        config.isolate_engines(isolated)
        config.enable_cuda_graph()
        runner = create_predictor(config)
        plain = ort.InferenceSession(model.SerializeToString(), providers=[CUDA])
        safe = sum(graph_safe(graph_model(s.model)) for s in runner.segments())
        graphed = sum(s.captured for s in runner.graph_status())
        print(f"\n{label}: {graphed} of {len(runner.segments())} segments capture CUDA graphs "
              f"({safe} pass our check; ORT refused {safe - graphed})")
        assert graphed >= 1  # (resnet50's inlined segment ends in a Gemm: made MatMul and Add)
        # One shape: fresh, bound (captured), replayed from graphs. Then shapes in turns (each
        # keeps a graph, but in segments allowed one graph only, whose graphs end).
        for number, shape in enumerate([shapes[0]] * 4 + shapes * 3):
            x = rng.uniform(0, 1, shape).astype(np.float32)
            got = runner.run_dict({name: x})
            want = plain.run(None, {name: x})
            assert outputs_match(list(got.values()), want, 3e-3, 1e-4), (label, shape)
            stats = runner.run_stats()
            if number == 3:  # the 2nd run captured, the 3rd and 4th replayed (bound or whole)
                assert stats.graph_runs + stats.replays >= 2, label
                assert stats.ended_graphs == 0, label  # no capture failed
        print(f"{label}: {stats.graph_runs} bound runs went with a graph, "
              f"{stats.replays} runs were replays")


@pytest.mark.parametrize("dynamic_batch", [False, True])
def test_a_yolov8_class_detector_is_captured_whole(dynamic_batch: bool, tmp_path: Path) -> None:
    """The detector of benchmarks/yolo_like.py (exported from PyTorch here): its one segment is
    captured, static export or dynamic batch, and answers as plain ORT CUDA does."""
    pytest.importorskip("torch", reason="exporting the detector needs PyTorch")
    import onnxruntime as ort

    from benchmarks.yolo_like import export

    path = tmp_path / "yolo.onnx"
    export(str(path), dynamic_batch=dynamic_batch, size=320)
    model = onnx.load(str(path))
    model.ir_version = min(model.ir_version, 10)
    batches = [1, 2] if dynamic_batch else [1]
    inputs = ([Input("images", [1, 3, 320, 320], [1, 3, 320, 320], [2, 3, 320, 320])]
              if dynamic_batch else [])
    config = Config(convert(model, TensorRTConfig(inputs=inputs)).save(tmp_path / "h.onnx"))
    config.enable_use_gpu(0, 0)
    config.enable_cuda_graph()
    runner = create_predictor(config)
    status = runner.graph_status()
    print(f"\nyolo (dynamic batch: {dynamic_batch}): {status}")
    assert [s.captured for s in status] == [True] * len(status), status
    plain = ort.InferenceSession(model.SerializeToString(), providers=[CUDA])
    rng = np.random.default_rng(1)
    for batch in batches * 3:
        x = rng.uniform(0, 1, (batch, 3, 320, 320)).astype(np.float32)
        got = runner.run_dict({"images": x})["output0"]
        assert outputs_match([got], plain.run(None, {"images": x}), 3e-3, 1e-3), batch
    assert runner.run_stats().ended_graphs == 0


def test_io_binding_takes_device_pointers_and_gives_device_outputs(tmp_path: Path) -> None:
    import cupy

    model = models.split_chain()
    path = convert(model, DYNAMIC).save(tmp_path / "m.onnx")
    predictor = gpu_predictor(path, isolated=False)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    on_gpu = cupy.asarray(x)
    binding = predictor.io_binding()
    binding.bind_input("x", "cuda", 0, np.float32, list(x.shape), on_gpu.data.ptr)
    name = predictor.get_outputs()[0].name
    binding.bind_output(name, "cuda")
    predictor.run_with_iobinding(binding)
    (device,) = binding.get_outputs()
    assert hasattr(device, "__cuda_array_interface__")
    (host,) = binding.copy_outputs_to_cpu()
    expected = ort_run(model, {"x": x})[0]
    np.testing.assert_allclose(host, expected, rtol=1e-5, atol=1e-5)


def _resnet50_with_cuda_graphs(tmp_path: Path) -> tuple[onnx.ModelProto, Predictor]:
    """onnx's resnet50 and a GPU predictor of it converted (one segment) with CUDA graphs."""
    model = onnx.load(str(onnx_light_model("resnet50")))
    config = Config(convert(model, TensorRTConfig()).save(tmp_path / "r.onnx"))
    config.enable_use_gpu(0, 0)
    config.enable_cuda_graph()
    return model, create_predictor(config)


def test_device_inputs_replay_the_cuda_graph(tmp_path: Path) -> None:
    """With CUDA graphs, cupy inputs (new arrays, or one rewritten in place) are copied into the
    staging buffer the graph reads: the runs replay it and answer as plain ORT CUDA does."""
    cupy = pytest.importorskip("cupy")
    import onnxruntime as ort

    model, runner = _resnet50_with_cuda_graphs(tmp_path)
    assert [s.captured for s in runner.graph_status()] == [True]
    plain = ort.InferenceSession(model.SerializeToString(), providers=[CUDA])
    rng = np.random.default_rng(8)
    kept = cupy.zeros((1, 3, 224, 224), cupy.float32)
    for turn in range(6):
        x = rng.uniform(0, 1, (1, 3, 224, 224)).astype(np.float32)
        if turn % 2:
            kept[...] = cupy.asarray(x)
            feed = kept
        else:
            feed = cupy.asarray(x)
        got = runner.run_dict({"gpu_0/data_0": feed}, device_outputs=True)
        on_host = [cupy.asnumpy(v) for v in got.values()]
        assert outputs_match(on_host, plain.run(None, {"gpu_0/data_0": x}), 3e-3, 1e-4), turn
    stats = runner.run_stats()
    print(f"\ndevice inputs with graphs: {stats}")
    # fresh, bound (captured), then replays of the captured graph (one segment replays too)
    assert stats.device_copies == 6 and stats.replays == 4 and stats.graph_runs >= 1
    assert stats.host_copies == 0


def test_io_binding_with_cuda_graphs_replays_into_the_bound_buffers(tmp_path: Path) -> None:
    """As ORT's IOBinding with CUDA graphs: an input bound by pointer and rewritten in place,
    outputs bound on CUDA: each run replays the graph and answers as plain ORT CUDA does, in
    the same output buffer (the predictor's own, as ORT's); nothing goes through the host."""
    cupy = pytest.importorskip("cupy")
    import onnxruntime as ort

    model, runner = _resnet50_with_cuda_graphs(tmp_path)
    plain = ort.InferenceSession(model.SerializeToString(), providers=[CUDA])
    source = cupy.zeros((1, 3, 224, 224), cupy.float32)
    binding = runner.io_binding()
    binding.bind_input("gpu_0/data_0", "cuda", 0, np.float32, [1, 3, 224, 224], source.data.ptr)
    for output in runner.get_outputs():
        binding.bind_output(output.name, "cuda")
    rng = np.random.default_rng(10)
    pointers = set()
    for turn in range(6):
        x = rng.uniform(0, 1, (1, 3, 224, 224)).astype(np.float32)
        source[...] = cupy.asarray(x)
        runner.run_with_iobinding(binding)
        if turn:
            pointers.add(binding.get_outputs()[0].data.ptr)
        got = binding.copy_outputs_to_cpu()
        assert outputs_match(got, plain.run(None, {"gpu_0/data_0": x}), 3e-3, 1e-4), turn
    stats = runner.run_stats()
    assert len(pointers) == 1 and stats.replays == 4 and stats.host_copies == 0
