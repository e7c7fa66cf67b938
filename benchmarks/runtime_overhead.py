"""Time the Predictor against plain ONNX Runtime on the original model, inlined and isolated.

For each model: segments of the isolated plan, median latency of plain ORT on the original
model, of the Predictor with fallback engines inlined (one session when no engine runs in
TensorRT) and isolated (each engine its own segment, as TensorRT would run it), the ratios, and
the isolated overhead per segment boundary. Targets (GPU, batch 1): inlined ratio <= 1.03,
isolated overhead <= 30 microseconds per boundary.

    python benchmarks/runtime_overhead.py [--device cpu|cuda] [--runs 50] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
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


def measure(case: Case, device: str, runs: int, folder: Path) -> dict[str, object]:
    """Time plain ORT and the Predictor (inlined, isolated), warm-up runs excluded."""
    name, path, config, feed = case
    saved = convert(path, config).save(folder / f"{len(name)}.onnx")
    row: dict[str, object] = {"model": name}
    session = plain_session(path, device)
    calls: dict[str, Callable[[], object]] = {"plain_ort": lambda: session.run(None, feed)}  # type: ignore[attr-defined]
    predictors = {}
    variants = [("inlined", False, True), ("isolated", True, True)]
    if device == "cuda":
        variants.append(("inlined_own_streams", False, False))
    for label, isolated, shared in variants:
        settings = Config(saved)
        if device == "cuda":
            settings.enable_use_gpu()
        settings.isolate_engines(isolated)
        settings.share_cuda_stream(shared)
        predictors[label] = predictor = create_predictor(settings)
        if label != "inlined_own_streams":
            row[f"{label}_segments"] = len(predictor.plan.segments)
        calls[label] = (lambda p: lambda: p.run(feed))(predictor)
    times: dict[str, list[float]] = {label: [] for label in calls}
    # On the GPU the variants alternate run by run (drift hits all alike); on the CPU each runs
    # in its own block, since ORT's spinning worker threads would steal the next one's cores.
    order = [list(calls)] * (runs + 10) if device == "cuda" else [[label] * (runs + 10) for label in calls]
    seen: dict[str, int] = {label: 0 for label in calls}
    for labels in order:
        for label in labels:
            start = time.perf_counter()
            calls[label]()
            seen[label] += 1
            if seen[label] > 10:  # the first runs warm up (cuDNN autotuning, allocations)
                times[label].append(time.perf_counter() - start)
    for label in calls:
        row[f"{label}_ms"] = 1e3 * statistics.median(times[label])
    if device == "cuda":
        for label, predictor in list(predictors.items())[:2]:
            before = predictor.device.host_copies  # type: ignore[attr-defined]
            predictor.run(feed)
            row[f"{label}_host_copies_per_run"] = predictor.device.host_copies - before  # type: ignore[attr-defined]
            row[f"{label}_foreign_outputs"] = predictor.device.foreign_outputs  # type: ignore[attr-defined]
    plain = float(row["plain_ort_ms"])  # type: ignore[arg-type]
    row["inlined_ratio"] = float(row["inlined_ms"]) / plain  # type: ignore[arg-type]
    row["isolated_ratio"] = float(row["isolated_ms"]) / plain  # type: ignore[arg-type]
    if "inlined_own_streams_ms" in row:
        row["own_streams_ratio"] = float(row["inlined_own_streams_ms"]) / plain  # type: ignore[arg-type]
    boundaries = max(int(row["isolated_segments"]) - 1, 1)  # type: ignore[call-overload]
    row["isolated_us_per_boundary"] = 1e3 * (float(row["isolated_ms"]) - float(row["inlined_ms"])) / boundaries  # type: ignore[arg-type]
    return row


def table(rows: Sequence[dict[str, object]]) -> str:
    columns = ["model", "isolated_segments", "plain_ort_ms", "inlined_ms", "isolated_ms",
               "inlined_ratio", "isolated_ratio", "isolated_us_per_boundary"]
    extra = [c for c in rows[0] if c == "own_streams_ratio" or c.endswith("host_copies_per_run")] if rows else []
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
