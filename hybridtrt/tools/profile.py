"""``hybridtrt profile``: per-node times of the ORT segments (ONNX Runtime's profiler) and
per-layer times of the TensorRT engines (TensorRT's profiler), merged into one Chrome trace
(Perfetto / chrome://tracing) with one track per segment, plus a top-N table and whether each
segment is captured as a CUDA graph (and if not, why).

Segment spans are timed with the device synchronized before and after each segment. Node times
inside ORT segments are what ONNX Runtime's profiler reports: on the CPU the kernels' run time,
on CUDA the host-side time of each kernel's launch (ORT does not synchronize per node).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import os
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridtrt.errors import ConfigError
from hybridtrt.runtime.graphs import GraphStatus
from hybridtrt.runtime.plan import SegmentSpec
from hybridtrt.tools.tables import graph_table, text_table
from hybridtrt.tools.target import Target, make_feeds
from hybridtrt.core.files import write_atomically

__all__ = ["NodeTime", "ProfileResult", "ProfileSettings", "profile"]

_KERNEL = "_kernel_time"


@dataclasses.dataclass(frozen=True)
class ProfileSettings:
    """How to profile: untimed warm-up runs, then ``runs`` profiled runs.

    ``cuda_graph``: capture segments as CUDA graphs where they allow (``Config.enable_cuda_graph``;
    needs ``use_gpu``).
    """

    warmup: int = 3
    runs: int = 10
    use_gpu: bool = False
    device_id: int = 0
    isolate_engines: bool = False
    cuda_graph: bool = False

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.runs < 1:
            raise ConfigError(f"profile needs warmup >= 0 and runs >= 1, got warmup="
                              f"{self.warmup}, runs={self.runs}")
        if self.cuda_graph and not self.use_gpu:
            raise ConfigError("CUDA graphs need the GPU: set use_gpu too")


@dataclasses.dataclass(frozen=True)
class NodeTime:
    """One node of an ORT segment or one layer of a TensorRT engine, over the profiled runs."""

    name: str
    op_type: str
    segment: str
    runs_in: str
    total_ms: float
    median_ms: float
    count: int


@dataclasses.dataclass(frozen=True)
class _Span:
    run: int
    position: int
    name: str
    start_us: float
    end_us: float


@dataclasses.dataclass(frozen=True)
class ProfileResult:
    """The merged trace (Chrome trace JSON object), the per-node times, slowest first, and per
    segment whether it is captured as a CUDA graph (``Predictor.graph_status``)."""

    model: str
    runs: int
    trace: dict[str, Any]
    nodes: tuple[NodeTime, ...]
    graphs: tuple[GraphStatus, ...] = ()

    def write_trace(self, path: str | os.PathLike[str]) -> Path:
        """Write the trace JSON (open it in https://ui.perfetto.dev or chrome://tracing)."""
        target = Path(path)
        write_atomically(target, json.dumps(self.trace, indent=1).encode())
        return target

    def render(self, top: int = 20) -> str:
        """The top-N table, like ``trtexec --dumpProfile``: per run averages, slowest first."""
        total = sum(n.total_ms for n in self.nodes)
        rows = [(f"{n.total_ms:.3f}", f"{n.total_ms / self.runs:.4f}", f"{n.median_ms:.4f}",
                 f"{100 * n.total_ms / total:.1f}" if total else "-", n.segment, n.op_type, n.name)
                for n in self.nodes[:top]]
        header = ("time ms", "avg ms", "median ms", "time %", "segment", "op", "node / layer")
        shown = f"top {min(top, len(self.nodes))} of {len(self.nodes)}"
        lines = [f"model: {self.model}", f"{self.runs} profiled run(s); {shown} nodes and layers "
                 f"by total time ({total:.3f} ms in all)", ""]
        lines += text_table(header, rows, right=range(4))
        lines += graph_table(self.graphs)
        return "\n".join(lines)


class _Recorder:
    """Segment spans from the run loop, and TensorRT layer times as the profiler reports them."""

    def __init__(self, sync: Any) -> None:
        self.sync = sync
        self.run = -1
        self.spans: list[_Span] = []
        self.layers: dict[tuple[int, str], list[tuple[str, float]]] = {}
        self._origin = time.perf_counter()
        self._start = 0.0

    def _now_us(self) -> float:
        return (time.perf_counter() - self._origin) * 1e6

    def before(self, position: int, spec: SegmentSpec) -> None:
        self.sync()
        self._start = self._now_us()

    def after(self, position: int, spec: SegmentSpec, inputs: Mapping[str, Any],
              outputs: Sequence[Any]) -> None:
        self.sync()
        if self.run >= 0:
            self.spans.append(_Span(self.run, position, spec.name, self._start, self._now_us()))

    def layer(self, engine: str, layer: str, milliseconds: float) -> None:
        if self.run >= 0:
            self.layers.setdefault((self.run, engine), []).append((layer, float(milliseconds)))


def profile(target: Target, settings: ProfileSettings = ProfileSettings(),
            shapes: Mapping[str, tuple[int, ...]] | None = None,
            inputs: Mapping[str, np.ndarray] | None = None) -> ProfileResult:
    """Run ``target`` with every profiler on and merge what they saw.

    Args:
        target: What to run (``hybridtrt.tools.target.load_target``).
        settings: Runs, warm-up and device.
        shapes: Input shapes for random inputs (default: static or engine profile opt shapes).
        inputs: Given input arrays.
    """
    with tempfile.TemporaryDirectory(prefix="hybridtrt-profile-") as folder:
        recorder = _Recorder(lambda: None)
        predictor = target.predictor(settings.use_gpu, settings.device_id,
                                     settings.isolate_engines,
                                     ort_profile_prefix=str(Path(folder) / "p_"),
                                     tensorrt_profiler=recorder.layer,
                                     cuda_graph=settings.cuda_graph)
        recorder.sync = predictor.device.synchronize
        feeds = make_feeds(target, predictor, shapes, inputs)
        predictor.set_segment_observer(recorder)
        for _ in range(settings.warmup):
            predictor.run_dict(feeds)
        for run in range(settings.runs):
            recorder.run = run
            predictor.run_dict(feeds)
        predictor.set_segment_observer(None)
        ort_events = {name: json.loads(Path(path).read_text())
                      for name, path in predictor.end_profiling().items()}
    specs = predictor.segments()
    runs_in = {p.name: p.runs_in for p in predictor.engine_status()}
    where = {s.name: runs_in.get(s.name, "onnxruntime") for s in specs}
    trace, times = _merge(target, specs, where, recorder, ort_events, settings.runs)
    ranked = sorted(times, key=lambda n: (-n.total_ms, n.segment, n.name))
    return ProfileResult(str(target.path), settings.runs, trace, tuple(ranked),
                         tuple(predictor.graph_status()))


def _merge(target: Target, specs: Sequence[SegmentSpec], where: Mapping[str, str],
           recorder: _Recorder, ort_events: Mapping[str, list[dict[str, Any]]],
           runs: int) -> tuple[dict[str, Any], list[NodeTime]]:
    events: list[dict[str, Any]] = [
        {"ph": "M", "pid": 1, "name": "process_name", "args": {"name": f"hybridtrt {target.path.name}"}}]
    for position, spec in enumerate(specs):
        label = f"{spec.name} ({where[spec.name]})"
        events.append({"ph": "M", "pid": 1, "tid": position + 1, "name": "thread_name",
                       "args": {"name": label}})
        events.append({"ph": "M", "pid": 1, "tid": position + 1, "name": "thread_sort_index",
                       "args": {"sort_index": position}})
    durations: dict[tuple[str, str, str], list[float]] = {}
    runs_of = {s.name: [sp for sp in recorder.spans if sp.name == s.name] for s in specs}
    for span in recorder.spans:
        events.append({"ph": "X", "pid": 1, "tid": span.position + 1, "cat": "segment",
                       "name": span.name, "ts": span.start_us, "dur": span.end_us - span.start_us,
                       "args": {"run": span.run}})
    for name, spans in runs_of.items():
        if name in ort_events:
            events += _ort_nodes(ort_events[name], spans, durations)
        events += _trt_layers(name, spans, recorder.layers, durations)
    times = [NodeTime(node, op, segment, where.get(segment, "onnxruntime"), sum(ms),
                      statistics.median(ms), len(ms))
             for (segment, node, op), ms in durations.items()]
    origin = min((e["ts"] for e in events if "ts" in e), default=0.0)
    for event in events:
        if "ts" in event:
            event["ts"] = round(event["ts"] - origin, 3)  # microseconds from the first run
    events.sort(key=lambda e: (e.get("ts", -1.0), e.get("tid", 0)))
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"model": str(target.path), "runs": runs}}, times


def _ort_nodes(raw: list[dict[str, Any]], spans: Sequence[_Span],
               durations: dict[tuple[str, str, str], list[float]]) -> list[dict[str, Any]]:
    """ORT's node events of the profiled runs, moved onto the predictor's clock.

    ORT's own clock starts at session creation; the k-th profiled ``model_run`` is aligned
    with the start of the segment's k-th profiled span (warm-up runs come first and are dropped).
    """
    model_runs = [e for e in raw if e.get("name") == "model_run"]
    kept = model_runs[len(model_runs) - len(spans):] if spans else []
    nodes = sorted((e for e in raw if e.get("cat") == "Node" and str(e.get("name", "")).endswith(_KERNEL)),
                   key=lambda e: e["ts"])
    starts = [e["ts"] for e in nodes]
    found = []
    for span, run in zip(spans, kept):
        begin, end, shift = run["ts"], run["ts"] + run["dur"], span.start_us - run["ts"]
        for event in nodes[bisect.bisect_left(starts, begin):bisect.bisect_right(starts, end)]:
            node = event["name"][: -len(_KERNEL)]
            args = event.get("args", {})
            op = str(args.get("op_name", ""))
            durations.setdefault((span.name, node, op), []).append(event["dur"] / 1e3)
            found.append({"ph": "X", "pid": 1, "tid": span.position + 1, "cat": "node",
                          "name": node, "ts": event["ts"] + shift, "dur": event["dur"],
                          "args": {"op": op, "provider": args.get("provider", ""),
                                   "run": span.run}})
    return found


def _trt_layers(name: str, spans: Sequence[_Span], layers: Mapping[tuple[int, str], list[tuple[str, float]]],
                durations: dict[tuple[str, str, str], list[float]]) -> list[dict[str, Any]]:
    """TensorRT reports layer times without timestamps: laid end to end from the span's start."""
    found = []
    for span in spans:
        at = span.start_us
        for layer, ms in layers.get((span.run, name), []):
            durations.setdefault((name, layer, "TensorRT layer"), []).append(ms)
            found.append({"ph": "X", "pid": 1, "tid": span.position + 1, "cat": "layer",
                          "name": layer, "ts": at, "dur": ms * 1e3, "args": {"run": span.run}})
            at += ms * 1e3
    return found
