"""Convert synthetic static-shape graphs of 1k, 10k and 100k nodes and print the time per stage.

Each graph is a chain with skip connections (Add of the previous value and one a few steps back)
broken every 50 nodes by an op kept out of TensorRT (Sin, via disable_ops). Target: a whole
100k-node convert in <= 10 s on 2 cores, growing near-linearly (x12 or less for 10x nodes).
"untimed" is the part of convert's time outside every stage (near 0 when the stages account
for all of it); "cpu" is convert's CPU seconds (``time.process_time``), which other work on a
shared machine disturbs less than the wall-clock columns. The last line is the load average.

    python benchmarks/partition_scale.py [--sizes 1000 10000 100000] [--repeat 3] [--save DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import onnx
import onnx.helper as h
from onnx import TensorProto

from hybridtrt import TensorRTConfig, convert

_WITHIN = {"accuracy guard"}  # stages timed inside another ("engines"), not beside it


def synthetic(nodes: int, width: int = 16, skip: int = 3, break_every: int = 50) -> onnx.ModelProto:
    """A chain of ``nodes`` nodes with skip connections, broken by Sin every ``break_every``."""
    values = ["x"]
    graph_nodes = []
    for i in range(nodes):
        out = f"v{i}"
        if i % break_every == break_every - 1:
            graph_nodes.append(h.make_node("Sin", [values[-1]], [out], name=f"n{i}"))
        elif i % 2:
            graph_nodes.append(h.make_node("Relu", [values[-1]], [out], name=f"n{i}"))
        else:
            other = values[max(0, len(values) - skip)]
            graph_nodes.append(h.make_node("Add", [values[-1], other], [out], name=f"n{i}"))
        values.append(out)
    graph = h.make_graph(
        graph_nodes, "scale",
        [h.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [h.make_tensor_value_info(values[-1], TensorProto.FLOAT, [1, width])],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def once(model: onnx.ModelProto, size: int, folder: Path) -> dict[str, float]:
    start, cpu = time.perf_counter(), time.process_time()
    hybrid = convert(model, TensorRTConfig(disable_ops=["Sin"]))
    converted, cpu = time.perf_counter(), time.process_time() - cpu
    hybrid.save(folder / f"scale_{size}.onnx")
    saved = time.perf_counter()
    stages = {k: v for k, v in hybrid.stage_seconds.items() if k not in _WITHIN}
    return {"nodes": size, "clusters": len(hybrid.engines), **hybrid.stage_seconds,
            "untimed": converted - start - sum(stages.values()),
            "convert": converted - start, "cpu": cpu, "save": saved - converted,
            "total": saved - start}


def run(sizes: Sequence[int], folder: Path, repeat: int = 3) -> list[dict[str, float]]:
    """One row per size: the fastest of ``repeat`` runs (the least disturbed by other work)."""
    rows = []
    for size in sizes:
        model = synthetic(size)
        runs = [once(model, size, folder) for _ in range(repeat)]
        rows.append(min(runs, key=lambda row: row["total"]))
    return rows


def table(rows: Sequence[dict[str, float]]) -> str:
    columns = list(rows[0])
    lines = [" ".join(f"{c:>12}" for c in columns)]
    for row in rows:
        lines.append(" ".join(f"{row[c]:>12.3f}" if isinstance(row[c], float) else f"{row[c]:>12}"
                              for c in columns))
    if len(rows) > 1:
        growth = [f"x{b['total'] / a['total']:.1f} for x{b['nodes'] / a['nodes']:.0f} nodes"
                  for a, b in zip(rows, rows[1:])]
        lines.append("growth of total: " + ", ".join(growth))
    lines.append("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the fastest counts")
    parser.add_argument("--save", type=Path, help="keep the hybrid models in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(table(run(args.sizes, args.save or Path(tmp), args.repeat)))


if __name__ == "__main__":
    main()
