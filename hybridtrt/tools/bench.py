"""``hybridtrt bench``: latency percentiles, throughput, peak memory and time per segment,
optionally side by side with plain ONNX Runtime on the original model."""

from __future__ import annotations

import dataclasses
import itertools
import json
import resource
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hybridtrt.errors import ConfigError, ExecutionError
from hybridtrt.runtime.plan import SegmentSpec
from hybridtrt.runtime.predictor import Predictor
from hybridtrt.runtime.segments import GraphStatus
from hybridtrt.tools.tables import graph_table, text_table
from hybridtrt.tools.target import Target, make_feeds
from hybridtrt.ort_support import first_line, ort_session

__all__ = ["BenchResult", "BenchSettings", "LatencyStats", "SegmentTime", "benchmark",
           "latency_stats"]

JSON_SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """How to time.

    Attributes:
        warmup: Untimed runs first (sessions allocate and tune on them).
        iterations: Timed runs (ignored when ``duration`` is set).
        duration: Time runs for this many seconds instead (at least ``min_runs``).
        use_gpu: Run on CUDA device ``device_id`` (default: the CPU).
        device_id: The CUDA device.
        isolate_engines: Run fallback engines as their own segments (as TensorRT would).
        compare_ort: Also time plain ONNX Runtime on the original model (the two take turns,
            run by run).
        segment_runs: Runs of the per-segment pass (synchronized after every segment).
        min_runs: The fewest timed runs with ``duration``.
        cuda_graph: Capture CUDA graphs where segments allow (``Config.enable_cuda_graph``;
            needs ``use_gpu``). Plain ONNX Runtime, when compared, runs without.
    """

    warmup: int = 10
    iterations: int = 100
    duration: float | None = None
    use_gpu: bool = False
    device_id: int = 0
    isolate_engines: bool = False
    compare_ort: bool = False
    segment_runs: int = 20
    min_runs: int = 10
    cuda_graph: bool = False

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise ConfigError(f"warmup must be >= 0, got {self.warmup}")
        if self.iterations < 1:
            raise ConfigError(f"iterations must be >= 1, got {self.iterations}")
        if self.duration is not None and self.duration <= 0:
            raise ConfigError(f"duration must be > 0 seconds, got {self.duration}")
        if self.segment_runs < 0:
            raise ConfigError(f"segment_runs must be >= 0, got {self.segment_runs}")
        if self.cuda_graph and not self.use_gpu:
            raise ConfigError("CUDA graphs need the GPU: set use_gpu (--gpu N) too")


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Latency of one way of running the model, in milliseconds, over ``runs`` timed runs."""

    runs: int
    min_ms: float
    median_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    throughput: float  # runs per second (1000 / mean)


@dataclasses.dataclass(frozen=True)
class SegmentTime:
    """Median time of one segment per run (``runs_in``: onnxruntime or tensorrt)."""

    name: str
    kind: str
    runs_in: str
    nodes: int
    median_ms: float


@dataclasses.dataclass(frozen=True)
class BenchResult:
    """Everything ``bench`` measured (``to_dict`` gives the ``--json`` document).

    Attributes:
        hybrid: Whole runs through the Predictor (``ort``: plain ONNX Runtime, when compared).
        segments: Median time of each segment, from a pass synchronized after every segment.
        boundary_ms: Median time per run of that pass spent outside every segment: the
            Predictor's input checks and the hand-off at the ``boundaries`` between segments.
        memory_peak_mib: GPU memory in use at its peak, less what was in use before loading
            (device-wide, from cudaMemGetInfo), or the process's peak resident host memory.
    """

    model: str
    device: str
    shapes: dict[str, list[int]]
    settings: BenchSettings
    hybrid: LatencyStats
    segments: tuple[SegmentTime, ...]
    boundary_ms: float
    boundaries: int
    memory_peak_mib: float
    memory_kind: str
    ort: LatencyStats | None = None
    original_from: str = ""
    graphs: tuple[GraphStatus, ...] = ()  # with --cuda-graph: per segment, captured or why not

    @property
    def ratio(self) -> float | None:
        """Median hybrid latency over median plain ORT latency."""
        return self.hybrid.median_ms / self.ort.median_ms if self.ort and self.ort.median_ms else None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["schema"] = JSON_SCHEMA_VERSION
        data["ratio"] = self.ratio
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def render(self) -> str:
        """The tables ``hybridtrt bench`` prints."""
        shapes = ", ".join(f"{k}:{'x'.join(map(str, v))}" for k, v in self.shapes.items())
        lines = [f"model: {self.model}", f"device: {self.device}", f"inputs: {shapes}", ""]
        rows = [("hybridtrt", self.hybrid)] + ([("onnxruntime", self.ort)] if self.ort else [])
        lines += text_table(("runner", "runs", "min ms", "mean ms", "median ms", "p90 ms",
                             "p95 ms", "p99 ms", "max ms", "runs/s"),
                            [(name, str(s.runs), *(f"{v:.3f}" for v in (
                                s.min_ms, s.mean_ms, s.median_ms, s.p90_ms, s.p95_ms, s.p99_ms,
                                s.max_ms)),
                              f"{s.throughput:.1f}") for name, s in rows], right=range(1, 10))
        if self.ratio is not None:
            lines.append(f"\nhybridtrt / onnxruntime (median): {self.ratio:.3f}  "
                         f"(original: {self.original_from})")
        lines.append(f"peak {self.memory_kind}: {self.memory_peak_mib:.1f} MiB")
        if self.segments:
            total = sum(s.median_ms for s in self.segments) + self.boundary_ms
            seg_rows = [(s.name, s.runs_in, str(s.nodes), f"{s.median_ms:.3f}",
                         f"{100 * s.median_ms / total:.1f}" if total else "-") for s in self.segments]
            seg_rows.append((f"predictor, {self.boundaries} boundaries", "hybridtrt", "-",
                             f"{self.boundary_ms:.3f}",
                             f"{100 * self.boundary_ms / total:.1f}" if total else "-"))
            lines += ["", "time per segment (median of a pass synchronized after every segment):"]
            lines += text_table(("segment", "runs in", "nodes", "median ms", "%"), seg_rows,
                                right=(2, 3, 4))
        lines += graph_table(self.graphs)
        return "\n".join(lines)


def latency_stats(seconds: Sequence[float]) -> LatencyStats:
    """Summarize run times given in seconds."""
    if not seconds:
        raise ConfigError("no timed runs")
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    mean = float(ms.mean())
    return LatencyStats(len(ms), float(ms.min()), float(np.median(ms)),
                        float(np.percentile(ms, 90)), float(np.percentile(ms, 95)),
                        float(np.percentile(ms, 99)),
                        float(ms.max()), mean, 1e3 / mean if mean else 0.0)


def benchmark(target: Target, settings: BenchSettings = BenchSettings(),
              shapes: Mapping[str, tuple[int, ...]] | None = None,
              inputs: Mapping[str, np.ndarray] | None = None) -> BenchResult:
    """Time ``target``'s hybrid model through the Predictor (and plain ORT when asked).

    Args:
        target: What to run (``hybridtrt.tools.target.load_target``).
        settings: Warm-up, iterations or duration, device.
        shapes: Input shapes for random inputs (default: static or engine profile opt shapes).
        inputs: Given input arrays (take precedence over ``shapes``).
    """
    memory = _memory_probe(settings)
    predictor = target.predictor(settings.use_gpu, settings.device_id, settings.isolate_engines,
                                 cuda_graph=settings.cuda_graph)
    feeds = make_feeds(target, predictor, shapes, inputs)
    sync = predictor.device.synchronize
    calls: dict[str, Callable[[], object]] = {"hybridtrt": lambda: predictor.run(None, feeds)}
    if settings.compare_ort:
        calls["onnxruntime"] = _plain_session(target, settings, feeds)
    timed = _time(calls, sync, settings)
    memory.sample()
    segments, boundary = _segment_pass(predictor, feeds, sync, settings.segment_runs, memory)
    hybrid, ort = timed["hybridtrt"], timed.get("onnxruntime")
    device = f"cuda:{settings.device_id}" if settings.use_gpu else "cpu"
    if settings.cuda_graph:
        device += ", CUDA graphs"
    return BenchResult(str(target.path), device,
                       {k: [int(d) for d in np.shape(v)] for k, v in feeds.items()},
                       settings, hybrid, segments, boundary, max(len(segments) - 1, 0),
                       memory.peak_mib(), memory.kind, ort,
                       target.original_from if settings.compare_ort else "",
                       tuple(predictor.graph_status()) if settings.cuda_graph else ())


def _time(calls: Mapping[str, Callable[[], object]], sync: Callable[[], None],
          settings: BenchSettings) -> dict[str, LatencyStats]:
    """Warm up, then time whole runs, the runners taking turns (so clock and thermal drift
    hit them alike), each clock read after the device is synchronized."""
    for _ in range(settings.warmup):
        for call in calls.values():
            call()
    sync()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    deadline = time.perf_counter() + settings.duration if settings.duration else None
    for turn in itertools.count(1):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            sync()
            seconds[name].append(time.perf_counter() - start)
        if deadline is None:
            if turn >= settings.iterations:
                break
        elif time.perf_counter() >= deadline and turn >= settings.min_runs:
            break
    return {name: latency_stats(times) for name, times in seconds.items()}


class _SegmentClock:
    """Times each segment, with the device synchronized before and after it."""

    def __init__(self, sync: Callable[[], None], memory: _MemoryProbe) -> None:
        self.sync = sync
        self.memory = memory
        self.seconds: dict[str, list[float]] = {}
        self.probing = 0.0  # seconds spent reading memory, this run
        self._start = 0.0

    def before(self, position: int, spec: SegmentSpec) -> None:
        self.sync()
        self._start = time.perf_counter()

    def after(self, position: int, spec: SegmentSpec, inputs: Mapping[str, Any],
              outputs: Sequence[Any]) -> None:
        self.sync()
        done = time.perf_counter()
        self.seconds.setdefault(spec.name, []).append(done - self._start)
        self.memory.sample()
        self.probing += time.perf_counter() - done  # not the predictor's time


def _segment_pass(predictor: Predictor, feeds: Mapping[str, np.ndarray], sync: Callable[[], None],
                  runs: int, memory: _MemoryProbe) -> tuple[tuple[SegmentTime, ...], float]:
    """Median time of each segment, and of the rest of a run (the boundaries between them)."""
    if runs == 0:
        return (), 0.0
    clock = _SegmentClock(sync, memory)
    totals = []
    predictor.set_segment_observer(clock)
    try:
        for _ in range(runs):
            clock.probing = 0.0
            start = time.perf_counter()
            predictor.run_dict(feeds)
            sync()
            totals.append(time.perf_counter() - start - clock.probing)
    finally:
        predictor.set_segment_observer(None)
    placements = {p.name: p.runs_in for p in predictor.engine_status()}
    segments = tuple(
        SegmentTime(s.name, s.kind, placements.get(s.name, "onnxruntime"), len(s.model.graph.node),
                    1e3 * statistics.median(clock.seconds[s.name]))
        for s in predictor.segments() if s.name in clock.seconds)
    per_run = [total - sum(clock.seconds[s.name][i] for s in segments)
               for i, total in enumerate(totals)]
    return segments, max(0.0, 1e3 * statistics.median(per_run))


def _plain_session(target: Target, settings: BenchSettings,
                   feeds: Mapping[str, Any]) -> Callable[[], object]:
    """A run of plain ONNX Runtime on the original model, checked once."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers: list[Any] = ["CPUExecutionProvider"]
    if settings.use_gpu:
        providers = [("CUDAExecutionProvider", {"device_id": str(settings.device_id)})]
    try:
        session = ort_session(target.original, options, providers)
        session.run(None, dict(feeds))
    except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
        raise ExecutionError(f"plain ONNX Runtime cannot run the original model "
                             f"({target.original_from}) on these inputs: {first_line(exc)}") from exc
    return lambda: session.run(None, dict(feeds))


class _MemoryProbe:
    """Peak GPU memory in use (cudaMemGetInfo, minus what was in use before loading) or the
    process's peak resident host memory."""

    def __init__(self, use_gpu: bool, device_id: int) -> None:
        self.use_gpu = use_gpu
        self.device_id = device_id
        self.kind = f"GPU memory in use (cuda:{device_id})" if use_gpu else "host memory (RSS)"
        self._base = self._used() if use_gpu else 0
        self._peak = self._base

    def _used(self) -> int:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError as exc:
            raise ConfigError("bench on a GPU needs cuda-python for its memory readings: "
                              "pip install 'hybridtrt[gpu]'") from exc

        (err,) = cudart.cudaSetDevice(self.device_id)
        err, free, total = cudart.cudaMemGetInfo()
        return int(total - free) if int(err) == 0 else 0

    def sample(self) -> None:
        if self.use_gpu:
            self._peak = max(self._peak, self._used())

    def peak_mib(self) -> float:
        if self.use_gpu:
            return (self._peak - self._base) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _memory_probe(settings: BenchSettings) -> _MemoryProbe:
    return _MemoryProbe(settings.use_gpu, settings.device_id)

