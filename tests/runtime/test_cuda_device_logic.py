"""The CUDA device's run logic (bound buffers, staging, replays) on ONNX Runtime's CPU provider.

``CudaDevice`` keeps its values where ``memory`` says; here that is host memory, behind a
stream over host memory (nothing to wait for, copies by memmove), so CI exercises the same code
paths as a GPU does (tests/gpu runs them on CUDA). A "device array" here is host memory that exposes
``__cuda_array_interface__``, as cupy's and torch's arrays do on a GPU.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx
import onnx.helper as h
import onnxruntime as ort
import pytest
from onnx import TensorProto, numpy_helper

import hybridtrt
from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.runtime import Config, Predictor, create_predictor
from hybridtrt.runtime import predictor as predictor_module
from hybridtrt.runtime.devices import CudaDevice
from hybridtrt.runtime.devices.captures import CAPTURE_FAILED, ONE_GRAPH_ENDED
from hybridtrt.runtime.graphs import GraphStatus
from tests import models

CHAIN = TensorRTConfig(
    inputs=[Input("x", min_input_shape=[1, 4], optim_input_shape=[2, 4], max_input_shape=[8, 4])],
    disable_ops=["Sin"],
)


class HostStream:
    """A stream over host memory: nothing to wait for (waits are counted), copies by memmove."""

    handle = 0

    def __init__(self) -> None:
        self.waits = 0
        self.orders: list[tuple[str, int]] = []  # ("wait_for" / "hold", the other stream)

    def synchronize(self) -> None:
        self.waits += 1

    def synchronize_device(self) -> None:
        self.waits += 1

    def copy(self, target: int, source: int, size: int) -> None:
        ctypes.memmove(target, source, size)

    def wait_for(self, other: int) -> None:
        self.orders.append(("wait_for", other))

    def hold(self, other: int) -> None:
        self.orders.append(("hold", other))


class HostBackedCuda(CudaDevice):
    memory = "cpu"

    def __init__(self, device_id: int = 0, memory_mb: int = 0, share_stream: bool = True,
                 graphs: bool = False, stream: HostStream | None = None) -> None:
        super().__init__(device_id, memory_mb, share_stream, graphs, stream or HostStream())

    def providers(self, graph: bool = False) -> list[Any]:
        return ["CPUExecutionProvider"]


class DeviceArray:
    """Host memory seen through ``__cuda_array_interface__`` (a stand-in for cupy)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.ascontiguousarray(array)
        self.shape, self.dtype = self.array.shape, self.array.dtype

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return {"shape": self.array.shape, "typestr": self.array.dtype.str,
                "data": (self.array.ctypes.data, False), "version": 3, "strides": None}


@pytest.fixture(autouse=True)
def host_backed_cuda(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    logger = logging.getLogger("hybridtrt")
    level = logger.level
    logger.setLevel(logging.ERROR)
    monkeypatch.setattr(predictor_module, "open_device",
                        lambda use_gpu, device_id, memory, threads, share, graphs=False:
                        HostBackedCuda(0, 0, share, graphs))
    yield
    logger.setLevel(level)  # (later tests' warnings are captured again)


def isolated(model: onnx.ModelProto, config: TensorRTConfig, tmp_path: Path,
             graphs: bool = False) -> Predictor:
    settings = Config(convert(model, config).save(tmp_path / "m.onnx"))
    settings.isolate_engines(True)
    if graphs:
        settings.enable_use_gpu()  # (the device is the host-backed one all the same)
        settings.enable_cuda_graph()
    return create_predictor(settings)


def expected(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[Any]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_runs_go_fresh_then_bound_then_replayed_with_right_results(tmp_path: Path) -> None:
    runner = isolated(models.split_chain(), CHAIN, tmp_path)
    assert len(runner.segments()) == 3
    rng = np.random.default_rng(0)
    steps = []
    for _ in range(4):
        x = rng.standard_normal((5, 4)).astype(np.float32)
        before = runner.run_stats()
        y = runner.run_dict({"x": x})["y"]
        after = runner.run_stats()
        steps.append((after.bound_runs - before.bound_runs, after.replays - before.replays))
        np.testing.assert_allclose(y, expected(models.split_chain(), {"x": x})[0], rtol=1e-6)
    assert steps == [(0, 0), (3, 0), (0, 1), (0, 1)]


def test_the_usual_call_replays_without_checking_again_what_passed_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a run of every output to the host was replayed or recorded, the same call with
    host arrays of the same dtypes and shapes replays at once (no input checks, no replay key);
    anything else goes the usual way, checks and errors included."""
    runner = isolated(models.split_chain(), CHAIN, tmp_path)
    checked: list[int] = []
    check = runner.input_checks.accepted
    monkeypatch.setattr(runner.input_checks, "accepted",
                        lambda feeds: checked.append(1) or check(feeds))
    rng = np.random.default_rng(3)

    def run(x: Any, **kwargs: Any) -> np.ndarray:
        return runner.run_dict({"x": x}, **kwargs)["y"]

    for rows in (5, 5, 5, 5):  # fresh, bound (recorded), then the hot way twice
        x = rng.standard_normal((rows, 4)).astype(np.float32)
        np.testing.assert_allclose(run(x), expected(models.split_chain(), {"x": x})[0], rtol=1e-6)
    assert len(checked) == 2 and runner.run_stats().replays == 2
    counts = []  # host copies counted by a run the hot way, then by one the checked way
    for names in (None, ["y"]):  # (naming the outputs takes the checked way)
        copies = runner.run_stats().host_copies
        runner.run_dict({"x": x}, names)
        counts.append(runner.run_stats().host_copies - copies)
    assert counts[0] == counts[1] > 0 and len(checked) == 3  # (on a GPU: 2, tests/gpu)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    for other in (x.astype(np.float64), x[:4], np.asfortranarray(rng.standard_normal((4, 5)).T.astype(np.float32))):
        checked.clear()
        try:
            run(other)
        except hybridtrt.InputError:
            pass  # float64: refused, as on the usual way
        assert checked == [1]
        # the other arrays never reached the replay: the next usual call still takes it
        checked.clear()
        replayed = runner.run_stats().replays
        np.testing.assert_allclose(run(x), expected(models.split_chain(), {"x": x})[0], rtol=1e-6)
        assert checked == [] and runner.run_stats().replays == replayed + 1
    with pytest.raises(hybridtrt.InputError, match="unknown inputs"):
        runner.run_dict({"x": x, "z": x})
    checked.clear()
    np.testing.assert_allclose(run(x, device_outputs=True).owner.numpy(),
                               expected(models.split_chain(), {"x": x})[0], rtol=1e-6)
    assert checked == [1]


def test_host_and_device_inputs_mixed_never_give_stale_results(tmp_path: Path) -> None:
    runner = isolated(models.split_chain(), CHAIN, tmp_path)
    rng = np.random.default_rng(1)
    for kind in ["host", "host", "host", "device", "device", "host", "device", "host"]:
        x = rng.standard_normal((5, 4)).astype(np.float32)
        y = runner.run_dict({"x": x if kind == "host" else DeviceArray(x)})["y"]
        np.testing.assert_allclose(y, expected(models.split_chain(), {"x": x})[0], rtol=1e-6)
    assert runner.run_stats().replays > 0


def test_data_dependent_shapes_fall_back_to_fresh_runs_with_right_results(tmp_path: Path) -> None:
    nodes = [h.make_node("Relu", ["x"], ["r"]), h.make_node("Sin", ["r"], ["s"]),
             h.make_node("NonZero", ["s"], ["y"])]
    model = models.make(nodes, [models.f32("x", [6])],
                        [h.make_tensor_value_info("y", TensorProto.INT64, [1, None])])
    runner = isolated(model, TensorRTConfig(disable_ops=["Sin"], min_subgraph_size=1), tmp_path)
    assert len(runner.segments()) >= 2
    for x in ([1, 0, 0, 2, 0, 0], [1, 2, 3, 0, 0, 4], [0, 0, 0, 0, 0, 5], [1, 0, 0, 2, 0, 0]):
        feeds = {"x": np.array(x, np.float32)}
        np.testing.assert_array_equal(runner.run_dict(feeds)["y"], expected(model, feeds)[0])


def test_string_outputs_stay_on_fresh_runs(tmp_path: Path) -> None:
    nodes = [h.make_node("Relu", ["x"], ["r"]), h.make_node("Cast", ["r"], ["y"], to=TensorProto.STRING)]
    model = models.make(nodes, [models.f32("x", [3])],
                        [h.make_tensor_value_info("y", TensorProto.STRING, [3])])
    runner = isolated(model, TensorRTConfig(min_subgraph_size=1), tmp_path)
    feeds = {"x": np.array([1.5, -2, 3], np.float32)}
    for _ in range(3):
        assert runner.run_dict(feeds)["y"].tolist() == expected(model, feeds)[0].tolist()


def test_device_outputs_handed_out_are_not_overwritten_by_later_runs(tmp_path: Path) -> None:
    runner = isolated(models.split_chain(), CHAIN, tmp_path)
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(4)]
    kept = [runner.run_dict({"x": x}, device_outputs=True)["y"] for x in xs]  # fresh, bound, replays
    assert runner.run_stats().replays == 2
    for x, out in zip(xs, kept):  # (without cupy, a DeviceTensor whose owner holds the value)
        np.testing.assert_allclose(out.owner.numpy(), expected(models.split_chain(), {"x": x})[0],
                                   rtol=1e-6)


def test_host_arrays_handed_out_are_not_overwritten_by_later_runs(tmp_path: Path) -> None:
    """A value in a bound host buffer (here every buffer: the device is host memory; on CUDA,
    host handovers an ``output_names`` call asks for) is copied as it goes to the caller."""
    runner = isolated(models.split_chain(), CHAIN, tmp_path)
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(4)]
    kept = [runner.run_dict({"x": x})["y"] for x in xs]  # fresh, bound, replays
    assert runner.run_stats().replays == 2
    for x, y in zip(xs, kept):
        np.testing.assert_allclose(y, expected(models.split_chain(), {"x": x})[0], rtol=1e-6)


def log_run_options(monkeypatch: pytest.MonkeyPatch,
                    fail: Any = None) -> list[Any]:
    """The run options of every session run through an IOBinding from now on, in order
    (appended to the returned list). ``fail(session, options)``: whether that run raises, as
    ORT does when a capture fails."""
    used: list[Any] = []
    run = ort.InferenceSession.run_with_iobinding

    def logged(session: Any, binding: Any, options: Any = None) -> None:
        used.append(options)
        if fail is not None and fail(session, options):
            raise RuntimeError("capture failed")  # as ORT does when a kernel copies to the host
        run(session, binding, options)

    monkeypatch.setattr(ort.InferenceSession, "run_with_iobinding", logged)
    return used


def graph_ids(used: list[Any]) -> list[int | None]:
    """The CUDA graph id each run asked for (-1: a run without capture; None: no run options)."""
    return [None if o is None else int(o.get_run_config_entry("gpu_graph_id")) for o in used]


NO_CAPTURE, GRAPH_0, GRAPH_1 = -1, 0, 1


def unsynced(options: Any) -> bool:
    try:
        return options.get_run_config_entry("disable_synchronize_execution_providers") == "1"
    except (AttributeError, RuntimeError):  # no options, or not this entry
        return False


def test_segments_but_the_last_skip_the_stream_sync_where_nothing_stages_host_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ORT's sync at the end of a run is skipped where the next segment queues behind it on the
    shared stream: not by the last segment (a run ends with its work done), nor by one with an op
    not known to stage no host memory (Sin), fresh, bound and replayed alike."""
    model = models.split_chain()
    runner = isolated(model, CHAIN, tmp_path)
    used = log_run_options(monkeypatch)
    x = np.random.default_rng(7).standard_normal((5, 4)).astype(np.float32)
    for _ in range(3):  # fresh, bound, replayed
        used.clear()
        np.testing.assert_allclose(runner.run_dict({"x": x})["y"], expected(model, {"x": x})[0],
                                   rtol=1e-6)
        assert [unsynced(o) for o in used] == [True, False, False]
    assert runner.run_stats().replays == 1
    assert runner.run_stats().unsynced_runs == 2  # (replays not counted)


def test_a_segment_whose_output_the_caller_reads_keeps_the_sync(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = [h.make_node("Relu", ["x"], ["a"]), h.make_node("Mul", ["a", "a"], ["b"]),
             h.make_node("Sin", ["b"], ["c"]), h.make_node("Relu", ["c"], ["y"])]
    model = models.make(nodes, [models.f32("x", ["N", 4])],
                        [models.f32("y", ["N", 4]), models.f32("a", ["N", 4])])
    runner = isolated(model, dataclasses.replace(CHAIN, min_subgraph_size=1), tmp_path)
    assert len(runner.segments()) == 3
    used = log_run_options(monkeypatch)
    x = np.random.default_rng(8).standard_normal((5, 4)).astype(np.float32)
    want = expected(model, {"x": x})
    got = runner.run_dict({"x": x})  # the first engine's output "a" goes to the host: synced
    assert [unsynced(o) for o in used] == [False, False, False]
    np.testing.assert_allclose(got["a"], want[1], rtol=1e-6)
    used.clear()
    got = runner.run_dict({"x": x}, ["y"])  # "a" not wanted: nothing to wait for
    assert [unsynced(o) for o in used] == [True, False, False]
    np.testing.assert_allclose(got["y"], want[0], rtol=1e-6)


def shape_handover() -> onnx.ModelProto:
    """An engine computes t = [N, -1] from Shape and reads it; the ORT segment after it reads t
    as Reshape's target shape, and hands q to the next engine."""
    nodes = [h.make_node("Relu", ["x"], ["a"]), h.make_node("Shape", ["a"], ["s"]),
             h.make_node("Slice", ["s", "zero", "one"], ["n"]),
             h.make_node("Concat", ["n", "minus_one"], ["t"], axis=0),
             h.make_node("Reshape", ["a", "t"], ["r"]), h.make_node("Mul", ["r", "r"], ["m"]),
             h.make_node("Sin", ["m"], ["q"]), h.make_node("Reshape", ["q", "t"], ["p"]),
             h.make_node("Relu", ["p"], ["y"])]
    constants = [numpy_helper.from_array(np.array(v, np.int64), n)
                 for n, v in (("zero", [0]), ("one", [1]), ("minus_one", [-1]))]
    return models.make(nodes, [models.f32("x", ["N", 2, 3])], [models.f32("y", ["N", 6])],
                       constants)


def test_values_ort_writes_on_the_host_are_handed_over_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs that ORT writes in host memory (here: the int64 shape values, as on CUDA) and
    only ORT segments read are bound there; results stay right fresh, bound, replayed and
    for a new shape."""
    def places(session: Any) -> dict[str, bool]:
        return {o.name: o.type == "tensor(int64)" for o in session.get_outputs()}

    monkeypatch.setattr(predictor_module, "output_places", places)
    # "GPU" 7 (host memory all the same), so that binding to it and to the host differ
    monkeypatch.setattr(predictor_module, "open_device",
                        lambda use_gpu, device_id, memory, threads, share, graphs=False:
                        HostBackedCuda(7, 0, share, graphs))
    placed: dict[str, list[str]] = {}  # output: where each fresh binding and bound buffer went
    bind_output, allocate = ort.IOBinding.bind_output, ort.OrtValue.ortvalue_from_shape_and_type

    def spied_bind(binding: Any, name: str, device_type: str = "cpu", device_id: int = 0,
                   *rest: Any) -> None:
        placed.setdefault(name, []).append(f"bind {device_type}:{device_id}")
        bind_output(binding, name, device_type, device_id, *rest)

    def spied_allocate(shape: Any, dtype: Any, device_type: str = "cpu", device_id: int = 0) -> Any:
        placed.setdefault("buffers", []).append(f"{device_type}:{device_id}")
        return allocate(shape, dtype, device_type, device_id)

    monkeypatch.setattr(ort.IOBinding, "bind_output", spied_bind)
    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_shape_and_type", staticmethod(spied_allocate))
    model = shape_handover()
    config = TensorRTConfig(inputs=[Input("x", [1, 2, 3], [2, 2, 3], [4, 2, 3])],
                            disable_ops=["Sin"], min_subgraph_size=1)
    runner = isolated(model, config, tmp_path)
    assert runner.segments()[0].outputs == ("t", "m")  # t: bound in host memory (below)
    for rows in (2, 2, 2, 3):  # fresh, bound, replayed; a new shape
        x = np.random.default_rng(rows).standard_normal((rows, 2, 3)).astype(np.float32)
        np.testing.assert_allclose(runner.run_dict({"x": x})["y"], expected(model, {"x": x})[0],
                                   rtol=1e-6)
    assert runner.run_stats().replays == 1
    # fresh runs (shapes 2 and 3) bind t to the host and m to the device; so do the buffers
    # made per shape: x's staging buffer, then t and m, then the next segments' outputs
    assert placed["t"] == ["bind cpu:0"] * 2 and placed["m"] == ["bind cpu:7"] * 2
    assert placed["buffers"] == ["cpu:7", "cpu:0", "cpu:7", "cpu:7", "cpu:7"] * 2


@pytest.mark.parametrize("setting", ["own streams", "cuda graphs"])
def test_no_run_skips_the_sync_with_own_streams_or_cuda_graphs(
        tmp_path: Path, setting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Config(convert(models.split_chain(), CHAIN).save(tmp_path / "m.onnx"))
    settings.enable_use_gpu()
    settings.isolate_engines(True)
    if setting == "own streams":
        settings.share_cuda_stream(False)  # the next session's stream does not wait for it
    else:
        settings.enable_cuda_graph()  # a non-blocking stream, unordered with host copies
    runner = create_predictor(settings)
    used = log_run_options(monkeypatch)
    x = np.ones((2, 4), np.float32)
    for _ in range(3):
        runner.run_dict({"x": x})
    assert used and not any(unsynced(o) for o in used)
    assert runner.run_stats().unsynced_runs == 0


def test_cuda_graph_runs_capture_only_on_fixed_buffers(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Which run options each segment run gets with CUDA graphs on (host memory cannot capture,
    so this checks the choice; tests/gpu checks the results on a GPU)."""
    runner = isolated(models.split_chain(), CHAIN, tmp_path, graphs=True)
    status = runner.graph_status()
    assert [(s.captured, s.reason) for s in status] == [
        (True, ""), (False, "node 'sin' (Sin) cannot be captured"), (True, "")]
    no_capture, graph_0, graph_1 = NO_CAPTURE, GRAPH_0, GRAPH_1
    used = log_run_options(monkeypatch)
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    runs = []
    for feed in (x, x, x, DeviceArray(x), DeviceArray(x), x):
        used.clear()
        np.testing.assert_allclose(runner.run_dict({"x": feed})["y"],
                                   expected(models.split_chain(), {"x": x})[0], rtol=1e-6)
        runs.append(graph_ids(used))
    assert runs == [
        [no_capture, None, no_capture],  # fresh: never captured
        [graph_0, None, graph_0],  # bound on the predictor's own buffers: graph 0 of each
        [graph_0, None, graph_0],  # replayed
        # A caller's device array is copied on the device into the staging buffer the host
        # array went to: the same graphs, replayed.
        [graph_0, None, graph_0],
        [graph_0, None, graph_0],
        [graph_0, None, graph_0],
    ]
    assert graph_1 not in sum(runs, [])
    # (replayed: the third run; the fifth, the device signature recorded on the fourth; the last)
    assert runner.run_stats().device_copies == 2 and runner.run_stats().replays == 3


def test_device_inputs_replay_cuda_graphs_with_fresh_values(tmp_path: Path) -> None:
    """With CUDA graphs, a caller's device arrays are copied into the input's staging buffer on
    every run: new arrays and arrays rewritten in place give their own results, by replay."""
    runner = isolated(models.split_chain(), CHAIN, tmp_path, graphs=True)
    rng = np.random.default_rng(5)
    kept = DeviceArray(rng.standard_normal((5, 4)).astype(np.float32))
    for turn in range(6):
        x = rng.standard_normal((5, 4)).astype(np.float32)
        if turn % 2:
            kept.array[...] = x  # the same device array, rewritten in place
            feed = kept
        else:
            feed = DeviceArray(x)
        y = runner.run_dict({"x": feed})["y"]
        np.testing.assert_allclose(y, expected(models.split_chain(), {"x": x})[0], rtol=1e-6)
    stats = runner.run_stats()
    assert stats.device_copies == 6 and stats.replays == 4 and stats.graph_runs > 0


def test_device_inputs_with_cuda_graphs_replay_without_checking_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With CUDA graphs, once a device-in, device-out run of every output was replayed or
    recorded, the same call with device arrays of the same dtypes and shapes replays at once
    (no input checks, no replay key), on the values the arrays hold now; anything else goes the
    checked way, errors included."""
    runner = isolated(models.split_chain(), CHAIN, tmp_path, graphs=True)
    checked: list[int] = []
    check = runner.input_checks.accepted
    monkeypatch.setattr(runner.input_checks, "accepted",
                        lambda feeds: checked.append(1) or check(feeds))
    rng = np.random.default_rng(8)
    kept = DeviceArray(np.zeros((5, 4), np.float32))

    def run(feed: Any) -> np.ndarray:
        return np.array(runner.run_dict({"x": feed}, device_outputs=True)["y"].owner.numpy())

    for turn in range(6):  # fresh, bound (recorded), then the hot way
        x = rng.standard_normal((5, 4)).astype(np.float32)
        kept.array[...] = x  # rewritten in place: the replay reads the new values
        feed = kept if turn % 2 else DeviceArray(x)
        np.testing.assert_allclose(run(feed), expected(models.split_chain(), {"x": x})[0],
                                   rtol=1e-6)
    assert len(checked) == 2 and runner.run_stats().replays == 4
    assert runner.run_stats().device_copies == 6  # every run copied its input in
    for other, refused in ((DeviceArray(x.astype(np.float64)), True),
                           (DeviceArray(rng.standard_normal((3, 4)).astype(np.float32)), False)):
        checked.clear()
        if refused:
            with pytest.raises(hybridtrt.InputError, match="dtype"):
                run(other)
        else:
            np.testing.assert_allclose(run(other), expected(models.split_chain(),
                                                            {"x": other.array})[0], rtol=1e-6)
        assert checked == [1]
    checked.clear()
    runner.run_dict({"x": kept}, ["y"], device_outputs=True)  # (naming outputs: checked)
    runner.run_dict({"x": kept})  # (outputs to the host: checked; host runs are hot apart)
    assert checked == [1, 1]


def _host_view(array: Any) -> np.ndarray:
    """The values a device array of the host-backed device holds now (no copy)."""
    interface = array.__cuda_array_interface__
    size = int(np.prod(interface["shape"])) * np.dtype(interface["typestr"]).itemsize
    buffer = (ctypes.c_char * size).from_address(interface["data"][0])
    return np.frombuffer(buffer, np.dtype(interface["typestr"])).reshape(interface["shape"])


def test_io_binding_with_cuda_graphs_hands_out_the_bound_buffers_and_replays_hot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As ORT's IOBinding: an input bound by device pointer and rewritten in place, outputs
    bound on CUDA; the runs replay the graph the hot way (checked twice only) and hand out
    the predictor's own output buffer, which the next run rewrites (no copy out)."""
    runner = isolated(models.split_chain(), CHAIN, tmp_path, graphs=True)
    checked: list[int] = []
    check = runner.input_checks.accepted
    monkeypatch.setattr(runner.input_checks, "accepted",
                        lambda feeds: checked.append(1) or check(feeds))
    source = np.zeros((5, 4), np.float32)
    binding = runner.io_binding()
    binding.bind_input("x", "cuda", 0, np.float32, [5, 4], source.ctypes.data)
    binding.bind_output("y", "cuda")
    rng = np.random.default_rng(9)
    pointers = set()
    for turn in range(5):
        source[...] = rng.standard_normal((5, 4)).astype(np.float32)
        runner.run_with_iobinding(binding)
        (y,) = binding.get_outputs()
        if turn:  # (the first run is fresh: ORT allocates its outputs)
            pointers.add(y.__cuda_array_interface__["data"][0])
        if turn > 1:
            assert y is handed  # the same device array over the bound buffer, every replay
        handed = y
        want = expected(models.split_chain(), {"x": source})[0]
        np.testing.assert_allclose(_host_view(y), want, rtol=1e-6)
        np.testing.assert_allclose(binding.copy_outputs_to_cpu()[0], want, rtol=1e-6)
    assert len(checked) == 2 and runner.run_stats().replays == 3
    assert len(pointers) == 1  # the bound buffer itself, every run
    kept = y
    source[...] = 1.0
    runner.run_with_iobinding(binding)
    np.testing.assert_allclose(_host_view(kept), expected(models.split_chain(), {"x": source})[0],
                               rtol=1e-6)  # (rewritten by the next run, as ORT's)


@pytest.mark.parametrize(("interface", "graphs", "orders", "waits"), [
    ({"stream": 7}, True, [("wait_for", 7)], 0),  # the caller's stream, on the device
    ({"stream": 7}, False, [("wait_for", 7)], 0),
    ({"stream": 1}, True, [("wait_for", 1)], 0),  # the legacy default stream (cupy's default)
    ({"stream": 1}, False, [], 0),  # (a blocking stream follows the legacy one by itself)
    ({"stream": None}, True, [], 0),  # the producer says nothing is pending
    ({}, True, [], 1),  # no stream named (version 2): the host waits for the device
    ({}, False, [], 0),  # (a blocking stream: ordered after the legacy stream's work)
])
def test_a_device_input_is_ordered_after_the_stream_its_interface_names(
        interface: dict[str, Any], graphs: bool, orders: list[tuple[str, int]],
        waits: int) -> None:
    """``__cuda_array_interface__`` version 3: the consumer orders its work after the stream
    the array names (CUDA graphs: a non-blocking stream, not ordered with the caller's)."""
    stream = HostStream()
    device = HostBackedCuda(0, 0, True, graphs, stream)
    array = np.arange(4, dtype=np.float32)
    value = type("Cai", (), {"__cuda_array_interface__": {
        "shape": (4,), "typestr": "<f4", "data": (array.ctypes.data, False), "version": 3,
        "strides": None, **interface}})()
    accepted = device.accept("x", value)
    got = accepted.numpy() if graphs else _host_view(accepted)  # (staged, or taken as it is)
    assert got.tolist() == [0, 1, 2, 3]
    assert stream.orders == orders and stream.waits == waits


def test_a_one_segment_plan_with_cuda_graphs_shares_the_predictor_stream(tmp_path: Path) -> None:
    """Its device inputs are copied on the predictor's stream into the buffers the graph
    reads: the session must run on that stream, or the replay could read them before the copy."""
    model = models.split_chain()
    one = TensorRTConfig(inputs=CHAIN.inputs)
    runner = isolated(model, one, tmp_path, graphs=True)
    assert len(runner.segments()) == 1 and runner.device.share_stream
    plain = isolated(model, one, tmp_path / "plain")
    assert not plain.device.share_stream  # (without graphs ORT's own stream is faster)


def test_device_inputs_without_cuda_graphs_are_bound_where_they_lie(tmp_path: Path) -> None:
    runner = isolated(models.split_chain(), CHAIN, tmp_path)
    x = np.ones((5, 4), np.float32)
    for _ in range(3):
        runner.run_dict({"x": DeviceArray(x)})
    assert runner.run_stats().device_copies == 0


def test_cuda_graphs_need_the_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Config(convert(models.split_chain(), CHAIN).save(tmp_path / "m.onnx"))
    settings.enable_cuda_graph()
    with pytest.raises(hybridtrt.ConfigError, match="CUDA graphs need the GPU"):
        create_predictor(settings)


def test_each_input_signature_has_its_own_cuda_graph(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    runner = isolated(models.split_chain(), CHAIN, tmp_path, graphs=True)
    no_capture, graph_0, graph_1 = NO_CAPTURE, GRAPH_0, GRAPH_1
    used = log_run_options(monkeypatch)
    runs = []
    for rows in (5, 5, 3, 3):
        used.clear()
        x = np.ones((rows, 4), np.float32)
        np.testing.assert_allclose(runner.run_dict({"x": x})["y"],
                                   expected(models.split_chain(), {"x": x})[0], rtol=1e-6)
        runs.append(graph_ids(used))
    assert runs == [[no_capture, None, no_capture], [graph_0, None, graph_0],
                    [no_capture, None, no_capture], [graph_1, None, graph_1]]


def test_a_one_segment_plan_captures_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = [h.make_node("Relu", ["x"], ["r"]), h.make_node("Add", ["r", "x"], ["y"])]
    model = models.make(nodes, [models.f32("x", [2, 3])], [models.f32("y", [2, 3])])
    settings = Config(convert(model, TensorRTConfig(min_subgraph_size=1)).save(tmp_path / "m.onnx"))
    settings.enable_use_gpu()
    settings.enable_cuda_graph()
    runner = create_predictor(settings)
    assert len(runner.segments()) == 1 and runner.graph_status()[0].captured
    used = log_run_options(monkeypatch)
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    for _ in range(3):
        np.testing.assert_allclose(runner.run_dict({"x": x})["y"], expected(model, {"x": x})[0])
    assert graph_ids(used) == [NO_CAPTURE, GRAPH_0, GRAPH_0]  # (host in, host out would never capture)
    assert runner.run_stats().replays == 1  # the third run: a one-segment plan replays too


def test_alternating_input_shapes_keep_their_cuda_graphs(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    runner = isolated(models.split_chain(), CHAIN, tmp_path, graphs=True)
    no_capture, graph_0, graph_1 = NO_CAPTURE, GRAPH_0, GRAPH_1
    used = log_run_options(monkeypatch)
    runs = []
    for rows in (5, 3, 5, 3, 5, 3):
        used.clear()
        x = np.full((rows, 4), rows, np.float32)
        np.testing.assert_allclose(runner.run_dict({"x": x})["y"],
                                   expected(models.split_chain(), {"x": x})[0], rtol=1e-6)
        runs.append(graph_ids(used)[0])
    # Each shape's host input keeps its own staging buffer, so each keeps its graph.
    assert runs == [no_capture, no_capture, graph_0, graph_1, graph_0, graph_1]


def test_graph_ids_are_never_given_twice_when_bound_signatures_go(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each session binds its 4 most recently used signatures; a signature bound anew after its
    binding went gets no graph id of one captured before (ORT would replay that graph)."""
    runner = isolated(models.split_chain(), CHAIN, tmp_path, graphs=True)
    used = log_run_options(monkeypatch)
    first = []
    for rows in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5, 1, 1):
        used.clear()
        x = np.full((rows, 4), rows, np.float32)
        np.testing.assert_allclose(runner.run_dict({"x": x})["y"],
                                   expected(models.split_chain(), {"x": x})[0], rtol=1e-6)
        first.append(graph_ids(used)[0] if used else None)  # (replays of graphs: logged too)
    assert first == [NO_CAPTURE, GRAPH_0, NO_CAPTURE, GRAPH_1, NO_CAPTURE, 2, NO_CAPTURE, 3,
                     NO_CAPTURE, NO_CAPTURE, NO_CAPTURE,  # 5: bound, but every graph id is taken
                     NO_CAPTURE, NO_CAPTURE]  # 1's binding went when 5 came: bound anew, no graph


def test_a_failed_capture_drops_the_graph_but_keeps_the_bound_buffers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = isolated(models.split_chain(), CHAIN, tmp_path, graphs=True)
    first = runner.segments()[0]
    used: list[Any] = []

    def failing_capture(session: Any, options: Any) -> bool:
        mine = tuple(o.name for o in session.get_outputs()) == first.outputs
        if mine:
            used.append(options)
        return mine and options is not None and graph_ids([options]) == [GRAPH_0]

    log_run_options(monkeypatch, failing_capture)
    x = np.random.default_rng(5).standard_normal((5, 4)).astype(np.float32)
    bound = []
    for _ in range(4):
        before = runner.run_stats().bound_runs
        np.testing.assert_allclose(runner.run_dict({"x": x})["y"],
                                   expected(models.split_chain(), {"x": x})[0], rtol=1e-6)
        bound.append(runner.run_stats().bound_runs - before)
    # fresh; graph 0 fails, then fresh again; from then on bound without capture
    assert graph_ids(used) == [NO_CAPTURE, GRAPH_0, NO_CAPTURE, NO_CAPTURE, NO_CAPTURE]
    assert bound == [0, 2, 3, 0]  # its buffers stay bound: the 3rd run is bound throughout
    stats = runner.run_stats()
    assert stats.replays == 1 and stats.ended_graphs == 1  # the 4th run: a replay
    assert runner.graph_status()[0] == GraphStatus(first.name, False, CAPTURE_FAILED)
    assert runner.graph_status()[2].captured
    # The last engine still goes with its graph: from the 3rd run, when its input is in the
    # first engine's bound buffer (its 4th run is part of the replay).
    assert stats.graph_runs == 1


def test_a_segment_with_a_batched_matmul_holds_one_graph_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A MatMul whose batches differ may stage pointer arrays in pinned host memory, which any
    other run of its session reuses: once such a run comes, the session's graphs end."""
    nodes = [h.make_node("Unsqueeze", ["x", "zero"], ["u"]),  # [1, N, 4] @ [2, 4, 3]
             h.make_node("MatMul", ["u", "w"], ["m"]),
             h.make_node("Sin", ["m"], ["s"]), h.make_node("Relu", ["s"], ["y"])]
    weights = [numpy_helper.from_array(np.array([0], np.int64), "zero"),
               numpy_helper.from_array(np.ones((2, 4, 3), np.float32), "w")]
    model = models.make(nodes, [models.f32("x", ["N", 4])], [models.f32("y", [2, "N", 3])],
                        weights)
    config = TensorRTConfig(inputs=[Input("x", [1, 4], [4, 4], [8, 4])], disable_ops=["Sin"],
                            min_subgraph_size=1)
    runner = isolated(model, config, tmp_path, graphs=True)
    assert [s.captured for s in runner.graph_status()] == [True, False, True]
    no_capture, graph_0, graph_1 = NO_CAPTURE, GRAPH_0, GRAPH_1
    used = log_run_options(monkeypatch)
    runs = []
    for rows in (5, 5, 5, 3, 3, 5):
        used.clear()
        x = np.random.default_rng(rows).standard_normal((rows, 4)).astype(np.float32)
        np.testing.assert_allclose(runner.run_dict({"x": x})["y"], expected(model, {"x": x})[0],
                                   rtol=1e-5, atol=1e-6)
        runs.append((graph_ids(used)[0], graph_ids(used)[2]))
    assert runs == [
        (no_capture, no_capture),  # fresh
        (graph_0, graph_0),
        (graph_0, graph_0),  # replayed
        (no_capture, no_capture),  # a new shape, fresh: the MatMul segment's graph ends here
        (no_capture, graph_1),  # the other segment keeps a graph per shape
        (no_capture, graph_0),
    ]
    assert [(s.captured, s.reason) for s in runner.graph_status()][::2] == [
        (False, ONE_GRAPH_ENDED), (True, "")]
    assert runner.run_stats().ended_graphs == 1


def test_a_gemm_segment_is_captured_as_matmul_and_add(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    weights = [onnx.numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "w"),
               onnx.numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")]
    nodes = [h.make_node("Relu", ["x"], ["r"]), h.make_node("Gemm", ["r", "w", "b"], ["y"], transB=1)]
    model = models.make(nodes, [models.f32("x", [2, 4])], [models.f32("y", [2, 3])], weights)
    settings = Config(convert(model, TensorRTConfig(min_subgraph_size=1)).save(tmp_path / "m.onnx"))
    settings.enable_use_gpu()
    settings.enable_cuda_graph()
    runner = create_predictor(settings)
    # (with the Gemm as it is, the segment would not be captured)
    assert runner.graph_status()[0].captured
    used = log_run_options(monkeypatch)
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((2, 4)).astype(np.float32)
        np.testing.assert_allclose(runner.run_dict({"x": x})["y"], expected(model, {"x": x})[0],
                                   rtol=1e-5, atol=1e-6)
    assert graph_ids(used) == [NO_CAPTURE, GRAPH_0, GRAPH_0]


def test_refused_calls_take_no_staging_buffer(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An input read by several segments is staged per shape, but only once it passed the
    checks: refused calls would otherwise take the buffers kept for good."""
    nodes = [h.make_node("Relu", ["x"], ["a"]), h.make_node("Sin", ["a"], ["b"]),
             h.make_node("Add", ["b", "x"], ["y"])]
    model = models.make(nodes, [models.f32("x", ["N", 4])], [models.f32("y", ["N", 4])])
    config = TensorRTConfig(inputs=CHAIN.inputs, disable_ops=["Sin"], min_subgraph_size=1)
    runner = isolated(model, config, tmp_path, graphs=True)
    assert [s.captured for s in runner.graph_status()] == [True, False, True]
    no_capture, graph_0, graph_1 = NO_CAPTURE, GRAPH_0, GRAPH_1
    for width in (9, 10, 11, 12):
        with pytest.raises(hybridtrt.InputError):
            runner.run_dict({"x": np.ones((2, width), np.float32)})
    used = log_run_options(monkeypatch)
    runs = []
    for rows in (5, 3, 5, 3, 5, 3):
        used.clear()
        x = np.full((rows, 4), rows, np.float32)
        np.testing.assert_allclose(runner.run_dict({"x": x})["y"], expected(model, {"x": x})[0],
                                   rtol=1e-6)
        runs.append(graph_ids(used)[0])
    assert runs == [no_capture, no_capture, graph_0, graph_1, graph_0, graph_1]


def test_replays_of_graph_sessions_hold_the_capture_lock(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from hybridtrt.runtime import replay as replay_module

    class CountingLock:
        entered = 0

        def __enter__(self) -> None:
            CountingLock.entered += 1

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(replay_module, "CAPTURE_LOCK", CountingLock())
    runner = isolated(models.split_chain(), CHAIN, tmp_path, graphs=True)
    x = np.ones((5, 4), np.float32)
    for _ in range(3):  # fresh, bound, replayed
        runner.run_dict({"x": x})
    assert runner.run_stats().replays == 1
    assert CountingLock.entered == 1  # a replayed step may be the run in which ORT captures


@pytest.mark.parametrize("graphs", [False, True])
def test_reading_a_device_value_waits_for_the_stream_only_where_the_copy_does_not(
        graphs: bool) -> None:
    """ORT's copy to the host is a cudaMemcpy on the legacy default stream, which waits for the
    work queued on a blocking stream; the stream is non-blocking only with CUDA graphs."""
    stream = HostStream()
    device = HostBackedCuda(0, 0, True, graphs, stream)
    value = type("DeviceValue", (), {"device_name": lambda self: "Cuda",
                                     "numpy": lambda self: np.ones(2, np.float32)})()
    assert device.to_host(value).tolist() == [1, 1]
    assert stream.waits == (1 if graphs else 0)
