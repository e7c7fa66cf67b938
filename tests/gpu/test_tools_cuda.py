"""bench, profile and compare on a CUDA GPU (skipped without one; see tests/gpu/test_cuda_runtime.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridtrt import TensorRTConfig, convert
from hybridtrt.cli import main
from hybridtrt.demo import gpu_usable
from hybridtrt.examples import onnx_light_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not gpu_usable(), reason="needs a CUDA GPU with onnxruntime-gpu and cuda-python"),
]


@pytest.fixture(scope="module")
def resnet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tools")
    original = onnx_light_model("resnet50")
    hybrid = convert(original, TensorRTConfig(disable_ops=["MaxPool"])).save(folder / "r.onnx")
    return original, hybrid


def test_bench_on_cuda_reports_gpu_memory_and_segments(resnet, tmp_path, capsys) -> None:
    _, hybrid = resnet
    out = tmp_path / "bench.json"
    assert main(["bench", str(hybrid), "--gpu", "0", "--iterations", "50", "--compare", "ort",
                 "--isolate-engines", "--json", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    print(printed)
    data = json.loads(out.read_text())
    assert data["device"] == "cuda:0" and data["memory_kind"].startswith("GPU memory")
    assert data["memory_peak_mib"] > 0 and len(data["segments"]) == 3
    assert 0.5 < data["ratio"] < 3


def test_bench_with_cuda_graphs(resnet, tmp_path, capsys) -> None:
    _, hybrid = resnet
    out = tmp_path / "bench.json"
    assert main(["bench", str(hybrid), "--gpu", "0", "--cuda-graph", "--iterations", "30",
                 "--compare", "ort", "--json", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    print(printed)
    data = json.loads(out.read_text())
    assert data["device"] == "cuda:0, CUDA graphs" and data["settings"]["cuda_graph"]
    # every segment says whether it is captured, and why not when it is not
    assert [g["segment"] for g in data["graphs"]] == [s["name"] for s in data["segments"]]
    assert all(g["captured"] or g["reason"] for g in data["graphs"]) and "CUDA graphs:" in printed
    assert 0.2 < data["ratio"] < 3


def test_profile_and_compare_on_cuda(resnet, tmp_path, capsys) -> None:
    original, hybrid = resnet
    trace = tmp_path / "t.json"
    assert main(["profile", str(hybrid), "--gpu", "0", "--runs", "3", "-o", str(trace),
                 "--isolate-engines", "-q"]) == 0
    events = json.loads(trace.read_text())["traceEvents"]
    providers = {e["args"].get("provider") for e in events if e.get("cat") == "node"}
    assert "CUDAExecutionProvider" in providers
    assert main(["compare", str(original), str(hybrid), "--gpu", "0", "-q"]) == 0
    print(capsys.readouterr().out)


def test_run_and_demo_on_cuda_match_plain_onnx_runtime(resnet, tmp_path, capsys) -> None:
    """`hybridtrt run --gpu 0` (isolated) writes the outputs plain ORT CUDA gives; the demo
    runs on the GPU."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from hybridtrt.ort_support import runnable_bytes

    original, hybrid = resnet
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(hybrid), "--input", f"gpu_0/data_0={tmp_path / 'x.npy'}", "--gpu", "0",
                 "--isolate-engines", "--output-dir", str(tmp_path / "out"), "-q"]) == 0
    plain = ort.InferenceSession(runnable_bytes(onnx.load(str(original))),
                                 providers=["CUDAExecutionProvider"])
    want = plain.run(None, {"gpu_0/data_0": x})[0]
    got = np.load(next((tmp_path / "out").glob("*.npy")))
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
    capsys.readouterr()
    assert main(["demo", "--output-dir", str(tmp_path / "demo"), "-q"]) == 0
    printed = capsys.readouterr().out
    print(printed)
    assert "ONNX Runtime on the GPU" in printed
