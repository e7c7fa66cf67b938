"""Online TensorRT (Paddle 2.x style): the first load converts, a later process with
``use_static=True`` loads from ``_opt_cache/``. Prints one row per model and precision.

Each load runs in a fresh process on a fresh copy of the model's folder, so nothing is shared
through memory; the times are the wall time of ``create_predictor`` plus one run.

    python benchmarks/online_load.py [--models det rec] [--precisions fp32 fp16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# min, opt, max of each model's input "x" (PP-OCR det: any image; rec: 48-pixel-high lines)
PROFILES = {"det": ([1, 3, 160, 160], [1, 3, 320, 320], [1, 3, 640, 640]),
            "rec": ([1, 3, 48, 80], [1, 3, 48, 320], [4, 3, 48, 640])}
_LOAD = """
import json, sys, time
import numpy as np
from hybridtrt.runtime import Config, PrecisionType, create_predictor
path, precision, low, opt, high = sys.argv[1:6]
start = time.perf_counter()
config = Config(path)
config.enable_tensorrt_engine(min_subgraph_size=3, use_static=True,
                              precision_mode=PrecisionType(precision))
name = "x"
config.set_trt_dynamic_shape_info({name: json.loads(low)}, {name: json.loads(high)},
                                  {name: json.loads(opt)})
predictor = create_predictor(config)
x = np.random.default_rng(0).random(json.loads(opt), dtype=np.float32)
predictor.run(None, {name: x})
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def _load_seconds(model: Path, precision: str, profile: tuple) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    shapes = [json.dumps(s) for s in profile]
    done = subprocess.run([sys.executable, "-c", _LOAD, str(model), precision, *shapes], env=env,
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"loading {model} failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def _measure(source: Path, precision: str, profile: tuple, repeat: int) -> tuple[float, float]:
    first, cached = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            model = Path(folder) / source.name
            shutil.copy(source, model)
            first.append(_load_seconds(model, precision, profile))
            cached.append(_load_seconds(model, precision, profile))
    return statistics.median(first), statistics.median(cached)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["det", "rec"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "fp16"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from hybridtrt.examples import paddleocr_model

    print(f"{'model':<8}{'precision':<11}{'first_load_s':>13}{'cached_load_s':>15}{'ratio':>8}")
    for kind in args.models:
        for precision in args.precisions:
            first, cached = _measure(paddleocr_model(kind), precision, PROFILES[kind],
                                     args.repeat)
            print(f"{kind:<8}{precision:<11}{first:>13.2f}{cached:>15.2f}{cached / first:>8.3f}")


if __name__ == "__main__":
    main()
