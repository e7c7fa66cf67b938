"""Time the Predictor against plain ONNX Runtime on the original model, inlined and isolated.

For each model: segments of the isolated plan, median latency of plain ORT on the original
model, of the Predictor with fallback engines inlined (one session when no engine runs in
TensorRT) and isolated (each engine its own segment, as TensorRT would run it), the ratios, and
the isolated overhead per segment boundary. Targets (GPU, batch 1): inlined ratio <= 1.03,
isolated overhead <= 30 microseconds per boundary. On CUDA it also times the floor of the
isolated run (the same ORT sessions run back to back on bindings made once) and from it the
Predictor's own cost per boundary, the isolated run with every segment waiting for its work
at the end of its run (``synced_us_per_boundary``; less ``isolated_us_per_boundary``, what
skipping ORT's sync saves), and with the values that ORT writes in host memory handed over on
the device (``device_handovers_us_per_boundary``; less ``isolated_us_per_boundary``, what
keeping them on the host saves). All of these take
turns run by run; a second pass times plain ORT and the inlined and isolated runs alone, taking
turns with each other only (``alone_inlined_ratio``, ``alone_us_per_boundary``): between two
runs of one predictor the first pass runs nine others, whose sessions leave the host's caches
colder for it, which costs the Predictor's Python more than plain ORT's. ``paired_`` and
``alone_us_per_boundary`` are medians of the isolated run's cost over the inlined one round by
round (``paired_us``); ``isolated_us_per_boundary`` is the difference of their medians.

    python benchmarks/runtime_overhead.py [--device cpu|cuda] [--runs 50] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.examples import onnx_light_model, paddleocr_model
from hybridtrt.ort_support import runnable_bytes
from hybridtrt.runtime import Config, create_predictor

Case = tuple[str, Path, TensorRTConfig, dict[str, np.ndarray]]


def cases() -> list[Case]:
    """Real models, split into several engines by keeping a few op types in ORT."""
    rng = np.random.default_rng(0)
    found: list[Case] = []
    resnet = onnx_light_model("resnet50")
    found.append(("resnet50 (pools in ORT)", resnet,
                  TensorRTConfig(disable_ops=["MaxPool", "AveragePool"]),
                  {"gpu_0/data_0": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)}))
    try:
        det = paddleocr_model("det")
        rec = paddleocr_model("rec")
    except Exception:  # noqa: BLE001 - rapidocr is optional here
        return found
    det_input = Input("x", [1, 3, 64, 64], [1, 3, 320, 320], [1, 3, 640, 640])
    found.append(("PP-OCRv4 det (Resize in ORT)", det,
                  TensorRTConfig(inputs=[det_input], disable_ops=["Resize"]),
                  {"x": rng.uniform(0, 1, (1, 3, 320, 320)).astype(np.float32)}))
    rec_input = Input("x", [1, 3, 48, 32], [1, 3, 48, 320], [4, 3, 48, 1280])
    found.append(("PP-OCRv4 rec (Softmax in ORT)", rec,
                  TensorRTConfig(inputs=[rec_input], disable_ops=["Softmax"]),
                  {"x": rng.uniform(0, 1, (1, 3, 48, 320)).astype(np.float32)}))
    return found


def plain_session(path: Path, device: str) -> object:
    import onnxruntime as ort

    providers = ["CUDAExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(runnable_bytes(onnx.load(str(path))), options, providers=providers)


def bare_loop(predictor: object, feed: dict[str, np.ndarray]) -> Callable[[], object] | None:
    """The floor of an isolated run: the predictor's own sessions (the same objects) run back
    to back on bindings made once (every tensor in a fixed CUDA buffer), with no Python between
    them but the loop.

    The isolated predictor minus this is the Predictor's own cost; this minus the inlined run is
    what ONNX Runtime itself charges for running the model as several sessions.
    """
    import onnxruntime as ort

    seen: dict[str, object] = {}

    class Record:
        def before(self, position: int, spec: object) -> None:
            return None

        def after(self, position: int, spec: object, inputs: dict, outputs: list) -> None:
            seen.update(inputs)
            seen.update(zip(spec.outputs, outputs))  # type: ignore[attr-defined]

    predictor.set_segment_observer(Record())  # type: ignore[attr-defined]
    predictor.run_dict(feed)  # type: ignore[attr-defined]
    predictor.set_segment_observer(None)  # type: ignore[attr-defined]
    buffers = {}
    # values the predictor hands over in host memory (``placement``) stay there here too
    kept = {n for s in predictor._segments for n in getattr(s, "host_values", ())}  # type: ignore[attr-defined]
    for name, value in seen.items():
        host = value if isinstance(value, np.ndarray) else getattr(value, "numpy", lambda: None)()
        if not isinstance(host, np.ndarray):
            return None  # not all tensors
        buffers[name] = ort.OrtValue.ortvalue_from_numpy(host, "cpu" if name in kept else "cuda", 0)
    steps = []
    for segment in predictor._segments:  # type: ignore[attr-defined]  # (a benchmark may look inside)
        binding = segment.session.io_binding()
        for name in segment.spec.inputs:
            binding.bind_ortvalue_input(name, buffers[name])
        for name in segment.spec.outputs:
            binding.bind_ortvalue_output(name, buffers[name])
        # the run options the predictor gives it (a segment before the last may skip ORT's sync)
        options = None if segment.sync else predictor.device._unsynced  # type: ignore[attr-defined]
        steps.append((segment.session, binding, options))
    outputs = [o.name for o in predictor.get_outputs()]  # type: ignore[attr-defined]

    def run() -> object:
        for name, array in feed.items():
            buffers[name].update_inplace(array)
        for session, binding, options in steps:
            session.run_with_iobinding(binding, options)
        return [buffers[name].numpy() for name in outputs]

    return run


def timed(calls: dict[str, Callable[[], object]], runs: int, device: str,
          seed: int = 0) -> dict[str, list[float]]:
    """Milliseconds per call, round by round, the first 10 runs of each excluded (warm-up:
    cuDNN autotuning, allocations).

    On the GPU the calls alternate run by run, in a new order each round (drift, and whatever
    one run leaves in the caches for the next, hit all alike); on the CPU each runs in its own
    block, since ORT's spinning worker threads would steal the next one's cores.
    """
    times: dict[str, list[float]] = {label: [] for label in calls}
    shuffle = random.Random(seed).sample
    order = ([shuffle(list(calls), len(calls)) for _ in range(runs + 10)] if device == "cuda"
             else [[label] * (runs + 10) for label in calls])
    seen: dict[str, int] = {label: 0 for label in calls}
    for labels in order:
        for label in labels:
            start = time.perf_counter()
            calls[label]()
            seen[label] += 1
            if seen[label] > 10:
                times[label].append(1e3 * (time.perf_counter() - start))
    return times


def paired_us(times: dict[str, list[float]], label: str, base: str, boundaries: int) -> float:
    """Microseconds per boundary that ``label`` costs over ``base``: the median of their
    differences round by round (the two ran next to each other, in the same machine state),
    which drift between rounds does not reach as it does a difference of medians."""
    return 1e3 * statistics.median(a - b for a, b in zip(times[label], times[base])) / boundaries


def measure(case: Case, device: str, runs: int, folder: Path) -> dict[str, object]:
    """Time plain ORT and the Predictor (inlined, isolated), warm-up runs excluded."""
    name, path, config, feed = case
    saved = convert(path, config).save(folder / f"{len(name)}.onnx")
    row: dict[str, object] = {"model": name}
    session = plain_session(path, device)
    calls: dict[str, Callable[[], object]] = {"plain_ort": lambda: session.run(None, feed)}  # type: ignore[attr-defined]
    predictors = {}
    variants = [("inlined", False, True, False), ("isolated", True, True, False)]
    if device == "cuda":
        variants += [("isolated_synced", True, True, False),
                     ("isolated_device_handovers", True, True, False),
                     ("inlined_own_streams", False, False, False), ("inlined_graphs", False, True, True),
                     ("isolated_graphs", True, True, True)]
    for label, isolated, shared, graphs in variants:
        settings = Config(saved)
        if device == "cuda":
            settings.enable_use_gpu()
        settings.isolate_engines(isolated)
        settings.share_cuda_stream(shared)
        if graphs:
            settings.enable_cuda_graph()
        predictors[label] = predictor = create_predictor(settings)
        if label in ("inlined", "isolated"):
            row[f"{label}_segments"] = len(predictor.plan.segments)
        if label == "isolated" and device == "cuda":  # segments that skip ORT's stream sync
            row["unsynced_segments"] = sum(not getattr(s, "sync", True) for s in predictor._segments)  # type: ignore[attr-defined]
            row["host_handovers"] = sum(len(getattr(s, "host_values", ())) for s in predictor._segments)  # type: ignore[attr-defined]
        if label == "isolated_synced":  # every segment waits for its work, as before
            for segment in predictor._segments:  # type: ignore[attr-defined]
                segment.sync = True
        if label == "isolated_device_handovers":  # values ORT writes on the host go to the device
            for segment in predictor._segments:  # type: ignore[attr-defined]
                segment.host_values = frozenset()
        calls[label] = (lambda p: lambda: p.run_dict(feed))(predictor)
    if device == "cuda":  # the isolated predictor's own sessions, bound once
        floor = bare_loop(predictors["isolated"], feed)
        if floor is not None:
            calls["isolated_floor"] = floor
    boundaries = max(int(row["isolated_segments"]) - 1, 1)  # type: ignore[call-overload]
    times = timed(calls, runs, device)
    row.update((f"{label}_ms", statistics.median(found)) for label, found in times.items())
    if device == "cuda":
        row["paired_us_per_boundary"] = paired_us(times, "isolated", "inlined", boundaries)
        # the three that the targets compare, with nothing else between them
        alone = timed({label: calls[label] for label in ("plain_ort", "inlined", "isolated")},
                      runs, device, 1)
        row.update((f"alone_{label}_ms", statistics.median(found)) for label, found in alone.items())
        row["alone_us_per_boundary"] = paired_us(alone, "isolated", "inlined", boundaries)
    if device == "cuda":
        for label, predictor in list(predictors.items())[:2]:
            before = predictor.run_stats().host_copies
            predictor.run_dict(feed)
            row[f"{label}_host_copies_per_run"] = predictor.run_stats().host_copies - before
            row[f"{label}_foreign_outputs"] = predictor.run_stats().foreign_outputs
    plain = float(row["plain_ort_ms"])  # type: ignore[arg-type]
    row["inlined_ratio"] = float(row["inlined_ms"]) / plain  # type: ignore[arg-type]
    row["isolated_ratio"] = float(row["isolated_ms"]) / plain  # type: ignore[arg-type]
    if "inlined_own_streams_ms" in row:
        row["own_streams_ratio"] = float(row["inlined_own_streams_ms"]) / plain  # type: ignore[arg-type]
    row["isolated_us_per_boundary"] = 1e3 * (float(row["isolated_ms"]) - float(row["inlined_ms"])) / boundaries  # type: ignore[arg-type]
    if "alone_isolated_ms" in row:
        row["alone_inlined_ratio"] = float(row["alone_inlined_ms"]) / float(row["alone_plain_ort_ms"])  # type: ignore[arg-type]
    if "isolated_synced_ms" in row:
        row["synced_us_per_boundary"] = 1e3 * (float(row["isolated_synced_ms"]) - float(row["inlined_ms"])) / boundaries  # type: ignore[arg-type]
        row["device_handovers_us_per_boundary"] = 1e3 * (float(row["isolated_device_handovers_ms"]) - float(row["inlined_ms"])) / boundaries  # type: ignore[arg-type]
    if "isolated_graphs_ms" in row:
        row["graphs_ratio"] = float(row["isolated_graphs_ms"]) / plain  # type: ignore[arg-type]
        row["graphs_us_per_boundary"] = 1e3 * (float(row["isolated_graphs_ms"]) - float(row["inlined_graphs_ms"])) / boundaries  # type: ignore[arg-type]
    if "isolated_floor_ms" in row:
        row["predictor_us_per_boundary"] = 1e3 * (float(row["isolated_ms"]) - float(row["isolated_floor_ms"])) / boundaries  # type: ignore[arg-type]
    return row


def table(rows: Sequence[dict[str, object]]) -> str:
    columns = ["model", "isolated_segments", "plain_ort_ms", "inlined_ms", "isolated_ms",
               "inlined_ratio", "isolated_ratio", "isolated_us_per_boundary"]
    extra = [c for c in rows[0] if c in ("paired_us_per_boundary", "alone_inlined_ratio",
                                         "alone_us_per_boundary", "unsynced_segments",
                                         "synced_us_per_boundary", "host_handovers",
                                         "device_handovers_us_per_boundary", "isolated_floor_ms", "predictor_us_per_boundary", "own_streams_ratio",
                                         "inlined_graphs_ms", "isolated_graphs_ms", "graphs_ratio",
                                         "graphs_us_per_boundary")
             or c.endswith("host_copies_per_run")] if rows else []
    columns += extra
    width = max(len(str(r["model"])) for r in rows) if rows else 10
    lines = [f"{'model':<{width}} " + " ".join(f"{c.replace('isolated_', 'iso_'):>14}" for c in columns[1:])]
    for row in rows:
        cells = [f"{row[c]:>14.3f}" if isinstance(row[c], float) else f"{row[c]:>14}" for c in columns[1:]]
        lines.append(f"{row['model']:<{width}} " + " ".join(cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    logging.getLogger("hybridtrt").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(case, args.device, args.runs, Path(tmp)) for case in cases()]
    print(f"device: {args.device}, median of {args.runs} runs, batch 1")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
