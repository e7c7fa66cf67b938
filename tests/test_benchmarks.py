"""The benchmarks run and print their table (their numbers are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_partition_scale_prints_a_table_per_stage() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "partition_scale.py"),
                           "--sizes", "200", "2000", "--repeat", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    header, small, large, growth, load = done.stdout.strip().splitlines()
    assert header.split() == ["nodes", "clusters", "load", "capability", "partition", "shape",
                              "ranges", "precision", "engines", "report", "rewrite", "untimed",
                              "convert", "cpu", "save", "total"]
    assert small.split()[:2] == ["200", "4"] and large.split()[:2] == ["2000", "40"]
    assert growth.startswith("growth of total: x")
    assert load.startswith("load average: ")


def test_runtime_overhead_prints_its_table() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "runtime_overhead.py"),
                           "--runs", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "device: cpu, median of 1 runs, batch 1"
    assert lines[1].split()[:4] == ["model", "iso_segments", "plain_ort_ms", "inlined_ms"]
    assert lines[2].startswith("resnet50 (pools in ORT)") and lines[2].split()[4] == "5"
    assert len(lines) == 5  # resnet50 and the PaddleOCR det and rec models


def test_online_load_prints_first_and_cached_load_times() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "online_load.py"),
                           "--models", "rec", "--precisions", "fp32", "--repeat", "1"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.strip().splitlines()
    assert header.split() == ["model", "precision", "first_load_s", "cached_load_s", "ratio"]
    assert row.split()[:2] == ["rec", "fp32"]


def test_large_model_prints_time_and_memory_per_stage() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "large_model.py"),
                           "--width", "128", "--weights", "6"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary, header, *rows = done.stdout.strip().splitlines()
    assert summary.startswith("weights: 0.00 GiB, engines: 2, max |hybrid - ORT|: ")
    assert header.split() == ["stage", "seconds", "peak_rss_GiB", "x_weights"]
    assert [r.rsplit(None, 3)[0] for r in rows] == ["build model", "convert", "save", "load",
                                                    "predictor", "run", "ORT session", "ORT run"]


def test_graphsurgeon_cost_prints_its_table_or_says_it_needs_graphsurgeon() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "graphsurgeon_cost.py"),
                           "--sizes", "500", "--repeat", "1"],
                          capture_output=True, text=True, timeout=300)
    try:
        import onnx_graphsurgeon  # noqa: F401
    except ImportError:  # (not a dependency: CI has it not)
        assert done.returncode != 0 and "onnx-graphsurgeon is not installed" in done.stderr
        return
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.strip().splitlines()
    assert header.split() == ["nodes", "gs_round_trip_s", "rewrite_step_s", "convert_s",
                              "round_trip/convert"]
    assert row.split()[0] == "500"
