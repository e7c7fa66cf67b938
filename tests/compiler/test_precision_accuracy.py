"""Accuracy of each precision against FP32 on real models, through ONNX Runtime (CPU).

The numbers come from ``benchmarks/precision_accuracy.py`` (typed engines run through ORT, 16-bit
values emulated by rounding after every node); the thresholds sit under the measured values, so
a broken cast, guard or Q/DQ placement fails them. PaddleOCR models come with rapidocr.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("rapidocr_onnxruntime", reason="the PaddleOCR models come with rapidocr-onnxruntime")

_SPEC = importlib.util.spec_from_file_location(
    "precision_accuracy", Path(__file__).resolve().parents[2] / "benchmarks" / "precision_accuracy.py")
bench = importlib.util.module_from_spec(_SPEC)  # type: ignore[arg-type]
sys.modules["precision_accuracy"] = bench  # dataclasses look their module up there
_SPEC.loader.exec_module(bench)  # type: ignore[union-attr]

# (model, mode) -> (least agreement, largest relative L2 error). FP16/BF16 rows must also meet
# the bar on these inputs the guard never saw: relative L2 <= 1e-2 or max abs <= 1e-3 of the
# range (before the logits check and the 5e-3 default: rec FP16 2.2e-2, cls BF16 2.1e-2)
LIMITS = {
    ("rec", "fp16"): (0.95, 1e-2), ("det", "fp16"): (0.98, 1e-2), ("cnn", "fp16"): (1.0, 1e-2),
    # BF16 errs by 0.32 (rec) and 0.13 (det) without the accuracy guard; with it under 1e-2
    ("rec", "bf16"): (0.95, 1e-2), ("det", "bf16"): (0.98, 1e-2), ("cnn", "bf16"): (1.0, 1e-2),
    ("clf", "fp16"): (1.0, 1e-2), ("clf", "bf16"): (0.9, 1e-2),
    ("cls", "fp16"): (1.0, 1e-2), ("cls", "bf16"): (0.95, 1e-2),
    ("shufflenet", "fp16"): (1.0, 1e-2), ("shufflenet", "bf16"): (1.0, 1e-2),  # onnx's light CNN
    # INT8 with the accuracy guard (tolerance 0.2; 0.925 text agreement and 0.27 without it)
    ("rec", "int8"): (0.975, 0.25), ("det", "int8"): (0.6, 0.8), ("cnn", "int8"): (0.95, 5e-2),
    # INT8 with the 8 most sensitive layers kept FP32 (int8_fp32_layers=8)
    ("rec", "int8:8"): (0.95, 0.35), ("det", "int8:8"): (0.9, 0.3),
}


@pytest.mark.slow
@pytest.mark.parametrize("model,mode", sorted(LIMITS))
def test_precision_stays_close_to_fp32(model: str, mode: str) -> None:
    # the INT8 bar (text agreement >= 97.5%) is measured on the benchmark's 40 inputs
    row = bench.measure(model, mode, samples=40 if (model, mode) in (("rec", "int8"),
                                                                    ("rec", "int8:8")) else 20)
    least, largest = LIMITS[(model, mode)]
    assert row.agreement >= least, row
    assert row.rel_l2 <= largest, row
    assert row.rel_l2 > 0, row  # the typed graph really computed in low precision
    if mode.startswith("int8"):
        assert row.quantize_nodes > 0
    if mode == "int8:8":
        assert row.fp32_nodes >= 8  # the sensitive layers, besides any the quantizer keeps
    if (model, mode) in (("rec", "fp16"), ("det", "fp16")):
        assert row.fp32_nodes > 0  # the guard kept the fragile nodes
    if mode in ("fp16", "bf16"):
        assert row.ok, row  # the bar, on inputs the guard never saw
        assert row.low_nodes > 0, row  # not every node demoted to FP32
    if mode in ("fp16", "bf16", "int8"):
        assert row.guard_after <= 1, row  # the guard's own rule: every engine within tolerance
    if (model, mode) == ("rec", "int8"):
        assert row.demoted > 0 and row.guard_before > 1, row  # the guard, not int8_fp32_layers
    if (model, mode) in (("rec", "bf16"), ("det", "bf16"), ("clf", "bf16"), ("cls", "bf16"),
                         ("rec", "fp16")):
        assert row.demoted > 0 and row.guard_before > 1, row


def test_the_benchmark_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--models", "cnn", "--modes", "fp16", "--samples", "2", "--unguarded"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].split() == ["model", "mode", "max_abs", "rel_l2", "bar", "agreement",
                                "fp32_nodes", "low_nodes", "q_nodes", "guard_before",
                                "guard_after", "demoted", "guard_s", "metric"]
    assert lines[2].split()[:2] == ["cnn", "fp16-"] and lines[2].split()[9:11] == ["nan", "nan"]
    assert lines[3].split()[:2] == ["cnn", "fp16"] and lines[3].split()[4] == "ok"
    assert float(lines[3].split()[10]) <= 1  # the guard checked the engine, within its rule
