"""What onnx-graphsurgeon would cost on the 100k-node convert benchmark (needs it installed).

Any rewrite or subgraph extraction through onnx-graphsurgeon starts with ``gs.import_onnx``
and ends with ``gs.export_onnx``; this times that round trip alone (no rewrite at all) on
``partition_scale``'s synthetic graphs, next to hybridtrt's own "rewrite" step and whole
convert on the same graph (fastest of ``--repeat`` runs).

    pip install onnx-graphsurgeon && python benchmarks/graphsurgeon_cost.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.partition_scale import synthetic  # noqa: E402
from hybridtrt import TensorRTConfig, convert  # noqa: E402


def _fastest(call, repeat: int) -> float:  # noqa: ANN001 - any callable
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        import onnx_graphsurgeon as gs
    except ImportError:
        sys.exit("onnx-graphsurgeon is not installed (pip install onnx-graphsurgeon): it is not "
                 "a dependency of hybridtrt; this benchmark says why")
    print(f"{'nodes':>8}{'gs_round_trip_s':>17}{'rewrite_step_s':>16}{'convert_s':>11}"
          f"{'round_trip/convert':>20}")
    for size in args.sizes:
        model = synthetic(size)
        trip = _fastest(lambda: gs.export_onnx(gs.import_onnx(model)), args.repeat)
        runs = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            hybrid = convert(model, TensorRTConfig(disable_ops=["Sin"]))
            runs.append((time.perf_counter() - start, hybrid.stage_seconds["rewrite"]))
        total, rewrite = min(runs)
        print(f"{size:>8}{trip:>17.3f}{rewrite:>16.3f}{total:>11.3f}{trip / total:>20.2f}")


if __name__ == "__main__":
    main()
