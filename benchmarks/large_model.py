"""A model over 2 GiB end to end: build, convert, save, load, run, and plain ONNX Runtime.

Builds (in a temp folder, weights written straight to an external data file) a chain of
``--weights`` square FP32 MatMuls of ``--width`` (default 10 x 8192^2 x 4 B = 2.5 GiB; at least
6, so each half makes an engine of ``min_subgraph_size`` 3) with a
Sigmoid in the middle kept out of TensorRT (``disable_ops``): two engines and an ORT segment.
Each stage group runs in a fresh process; a sampler thread records the peak RSS of each stage.

    python benchmarks/large_model.py [--width 8192] [--weights 10] [--folder DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PRELUDE = r"""
import json, sys, time
from pathlib import Path
import numpy as np
from benchmarks.rss import PeakRSS
_peak = PeakRSS(every=0.005)
ROWS = []
def stage(name, fn):
    _peak.restart()
    start = time.perf_counter()
    value = fn()
    ROWS.append({"stage": name, "seconds": time.perf_counter() - start,
                 "peak_rss": _peak.peak()})
    return value
folder = Path(sys.argv[1])
width, count = int(sys.argv[2]), int(sys.argv[3])
x = np.random.default_rng(1).standard_normal((1, width), dtype=np.float32)
"""

_BUILD = _PRELUDE + r"""
import onnx
from onnx import TensorProto, helper
def build():
    rng = np.random.default_rng(0)
    nodes, weights, offset, previous = [], [], 0, "x"
    with open(folder / "model.onnx.data", "wb") as data:
        for k in range(count):
            w = rng.standard_normal((width, width), dtype=np.float32) * np.float32(width ** -0.5)
            tensor = TensorProto(name=f"w{k}", data_type=TensorProto.FLOAT, dims=w.shape)
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (("location", "model.onnx.data"), ("offset", offset),
                               ("length", w.nbytes)):
                tensor.external_data.add(key=key, value=str(value))
            data.write(w.tobytes())
            offset += w.nbytes
            weights.append(tensor)
            out = f"h{k}"
            nodes.append(helper.make_node("MatMul", [previous, f"w{k}"], [out], name=f"mm{k}"))
            previous = out
            if k == count // 2 - 1:
                nodes.append(helper.make_node("Sigmoid", [out], ["mid"], name="mid"))
                previous = "mid"
    graph = helper.make_graph(nodes, "large", [helper.make_tensor_value_info("x", 1, [1, width])],
                              [helper.make_tensor_value_info(previous, 1, [1, width])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save_model(model, str(folder / "model.onnx"))
    return offset
weights = stage("build model", build)
print(json.dumps({"rows": ROWS, "weights": weights}))
"""

_CONVERT = _PRELUDE + r"""
from hybridtrt import TensorRTConfig, convert
config = TensorRTConfig(disable_ops=["Sigmoid"])
hybrid = stage("convert", lambda: convert(str(folder / "model.onnx"), config))
stage("save", lambda: hybrid.save(folder / "hybrid" / "model.onnx"))
print(json.dumps({"rows": ROWS, "engines": len(hybrid.engines)}))
"""

_RUN = _PRELUDE + r"""
from hybridtrt.core.hybrid import load
from hybridtrt.runtime import Config, Predictor
path = folder / "hybrid" / "model.onnx"
hybrid = stage("load", lambda: load(path))
predictor = stage("predictor", lambda: Predictor(Config(str(path)), hybrid))
out = stage("run", lambda: predictor.run(None, {"x": x})[0])
np.save(folder / "hybrid_out.npy", out)
print(json.dumps({"rows": ROWS}))
"""

_ORT = _PRELUDE + r"""
import onnxruntime as ort
def session():
    return ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
sess = stage("ORT session", session)
out = stage("ORT run", lambda: sess.run(None, {"x": x})[0])
np.save(folder / "ort_out.npy", out)
print(json.dumps({"rows": ROWS}))
"""


def _child(script: str, folder: Path, width: int, count: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYBRIDTRT_BACKEND": os.environ.get(
        "HYBRIDTRT_BACKEND", "none")}
    done = subprocess.run([sys.executable, "-c", script, str(folder), str(width), str(count)],
                          env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"a stage failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=8192)
    parser.add_argument("--weights", type=int, default=10)
    parser.add_argument("--folder", type=Path, default=None, help="keep the files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        built = _child(_BUILD, folder, args.width, args.weights)
        rows = built["rows"]
        converted = _child(_CONVERT, folder, args.width, args.weights)
        rows += converted["rows"]
        rows += _child(_RUN, folder, args.width, args.weights)["rows"]
        rows += _child(_ORT, folder, args.width, args.weights)["rows"]
        import numpy as np

        diff = float(np.abs(np.load(folder / "hybrid_out.npy") - np.load(folder / "ort_out.npy")).max())
    weights = built["weights"]
    print(f"weights: {weights / 2**30:.2f} GiB, engines: {converted['engines']}, "
          f"max |hybrid - ORT|: {diff:.3g}")
    print(f"{'stage':<14}{'seconds':>9}{'peak_rss_GiB':>14}{'x_weights':>11}")
    for row in rows:
        print(f"{row['stage']:<14}{row['seconds']:>9.2f}{row['peak_rss'] / 2**30:>14.2f}"
              f"{row['peak_rss'] / weights:>11.2f}")


if __name__ == "__main__":
    main()
