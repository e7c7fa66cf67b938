"""hybridtrt's CUDA graphs against ONNX Runtime's own whole-session CUDA graph (GPU only).

For each model: plain ORT CUDA, ORT with ``enable_cuda_graph`` (inputs and outputs bound on
the device, as ORT requires), and the hybrid model (TensorRT off, so its one segment runs in
ORT) with ``Config.enable_cuda_graph()``, fed and answered on the device. Median ms of
``--runs`` runs, the runners taking turns; ``hybrid/ort_graph`` is the ratio the issue targets.
``alone_hyb/ort_gr``: the same ratio with each graph runner timed alone, ``--runs`` runs in a row
(the median of 5 such rounds, the runners' order turned each round). ``iobind``: the hybrid
run as the ORT graph session is, through ``io_binding()`` (the input bound by device pointer,
outputs bound on CUDA: the predictor's own buffers, rewritten by the next run, as ORT's are).

    python benchmarks/cuda_graph_anchor.py [--runs 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
CUDA = "CUDAExecutionProvider"


def _models(folder: Path) -> list[tuple[str, Path, str, list[int]]]:
    from benchmarks.yolo_like import export
    from hybridtrt.examples import onnx_light_model

    yolo = folder / "yolo.onnx"
    export(str(yolo))
    return [("resnet50", onnx_light_model("resnet50"), "gpu_0/data_0", [1, 3, 224, 224]),
            ("yolov8n-like", yolo, "images", [1, 3, 640, 640])]


def _ort_graph(path: Path, name: str, x: np.ndarray):  # noqa: ANN202 - ORT's own types
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=[(CUDA, {"enable_cuda_graph": "1"})])
    binding = session.io_binding()
    device_x = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    binding.bind_ortvalue_input(name, device_x)
    for output in session.get_outputs():
        binding.bind_output(output.name, "cuda")
    session.run_with_iobinding(binding)  # the first run captures
    return lambda: session.run_with_iobinding(binding), (device_x, binding)


def _runners(path: Path, name: str, x: np.ndarray, folder: Path) -> dict:
    import cupy
    import onnxruntime as ort

    from hybridtrt import TensorRTConfig, convert
    from hybridtrt.runtime import Config, create_predictor

    plain = ort.InferenceSession(str(path), providers=[CUDA])
    graph, keep = _ort_graph(path, name, x)
    model = onnx.load(str(path))
    config = Config(convert(model, TensorRTConfig()).save(folder / f"{path.stem}.hybrid.onnx"))
    config.enable_use_gpu(0, 0)
    config.enable_cuda_graph()
    predictor = create_predictor(config)
    device_x = cupy.asarray(x)
    print(f"{path.stem}: {predictor.graph_status()}", file=sys.stderr)
    binding = predictor.io_binding()  # as ORT's: the input bound by pointer, outputs on CUDA
    binding.bind_input(name, "cuda", 0, np.float32, list(x.shape), device_x.data.ptr)
    for output in predictor.get_outputs():
        binding.bind_output(output.name, "cuda")
    return {"plain_ort": lambda: plain.run(None, {name: x}), "ort_graph": graph,
            "hybrid_graph": lambda: predictor.run_dict({name: device_x}, device_outputs=True),
            "hybrid_iobind": lambda: predictor.run_with_iobinding(binding),
            "_keep": (keep, device_x)}


def _timed(call, cupy) -> float:  # noqa: ANN001 - a runner and the cupy module
    start = time.perf_counter()
    call()
    cupy.cuda.Device().synchronize()
    return (time.perf_counter() - start) * 1e3


def _turns(calls: dict, runs: int, cupy) -> dict[str, float]:  # noqa: ANN001
    """Median ms of each runner, the runners taking turns run by run."""
    times: dict[str, list[float]] = {k: [] for k in calls}
    for turn in range(runs + 10):
        for key, call in calls.items():
            took = _timed(call, cupy)
            if turn >= 10:
                times[key].append(took)
    return {k: statistics.median(v) for k, v in times.items()}


def _blocks(calls: dict, runs: int, cupy, rounds: int = 5) -> dict[str, float]:  # noqa: ANN001
    """Median ms of each runner run alone, ``runs`` times in a row: the median over ``rounds``
    rounds, the runners' order turned each round (the GPU's clocks and the host drift)."""
    found: dict[str, list[float]] = {k: [] for k in calls}
    keys = list(calls)
    for turn in range(rounds):
        for key in keys if turn % 2 == 0 else keys[::-1]:
            times = [_timed(calls[key], cupy) for _ in range(runs + 10)][10:]
            found[key].append(statistics.median(times))
    return {k: statistics.median(v) for k, v in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import cupy

    print(f"{'model':<14}{'plain_ort_ms':>13}{'ort_graph_ms':>13}{'hybrid_graph_ms':>16}"
          f"{'hybrid/ort_graph':>17}{'hybrid/plain':>13}{'alone_hyb/ort_gr':>18}"
          f"{'iobind/ort_graph':>17}{'alone_iob/ort_gr':>18}")
    with tempfile.TemporaryDirectory() as folder:
        for label, path, name, shape in _models(Path(folder)):
            x = np.random.default_rng(0).random(shape, dtype=np.float32)
            calls = _runners(Path(path), name, x, Path(folder))
            keep = calls.pop("_keep")  # (the bound device input outlives the runs)
            med = _turns(calls, args.runs, cupy)
            alone = _blocks({k: calls[k] for k in ("ort_graph", "hybrid_graph", "hybrid_iobind")},
                            args.runs, cupy)
            print(f"{label:<14}{med['plain_ort']:>13.3f}{med['ort_graph']:>13.3f}"
                  f"{med['hybrid_graph']:>16.3f}{med['hybrid_graph'] / med['ort_graph']:>17.3f}"
                  f"{med['hybrid_graph'] / med['plain_ort']:>13.3f}"
                  f"{alone['hybrid_graph'] / alone['ort_graph']:>18.3f}"
                  f"{med['hybrid_iobind'] / med['ort_graph']:>17.3f}"
                  f"{alone['hybrid_iobind'] / alone['ort_graph']:>18.3f}")
            del keep


if __name__ == "__main__":
    main()
