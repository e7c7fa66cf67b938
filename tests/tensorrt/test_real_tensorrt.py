"""Real TensorRT engines, built and run: for GPU hosts with TensorRT installed.

Skipped everywhere else with the reason (TensorRT cannot be installed on this project's
machines, so these tests have not run yet; see "TensorRT status" in docs/TENSORRT.md). Run with
``python -m pytest tests/tensorrt -q -s`` or ``bash benchmarks/tensorrt_check.sh``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.demo import gpu_usable
from hybridtrt.runtime import Config, Predictor
from hybridtrt.trt.backends import load_backend
from tests.suites import backend_node_cases, lower_for_ort, onnx_light_cnns, ort_run, outputs_match, paddleocr_models


def _tensorrt_reason() -> str:
    backend, reason = load_backend()
    if backend is None:
        return reason
    if not gpu_usable():
        return "needs a CUDA GPU with onnxruntime-gpu and cuda-python"
    return backend.unusable_reason("cuda", 0)


REASON = _tensorrt_reason()
pytestmark = [pytest.mark.tensorrt, pytest.mark.skipif(bool(REASON), reason=f"real TensorRT: {REASON}")]


def _run(path: Path, feeds: dict[str, np.ndarray], cache: Path) -> dict[str, np.ndarray]:
    config = Config(path)
    config.enable_use_gpu(0, 0)
    config.require_tensorrt()
    config.set_engine_cache_dir(cache)
    return Predictor(config).run_dict(feeds)


def test_paddleocr_models_run_in_real_engines(tmp_path):
    rng = np.random.default_rng(0)
    shapes = {"det": [(1, 3, 320, 320), (1, 3, 640, 640), (1, 3, 960, 960)],
              "rec": [(1, 3, 48, 160), (1, 3, 48, 320), (1, 3, 48, 640)],
              "cls": [(1, 3, 48, 192), (1, 3, 48, 192), (1, 3, 48, 192)]}
    for kind, path in paddleocr_models().items():
        model = onnx.load(str(path))
        name = model.graph.input[0].name
        lo, opt, hi = shapes[kind]
        hybrid = convert(model, TensorRTConfig([Input(name, lo, opt, hi)], cache_dir=tmp_path / "cache"))
        assert {e.status for e in hybrid.engines} == {"built"}, hybrid.report().render()
        saved = hybrid.save(tmp_path / f"{kind}.onnx")
        for shape in (lo, opt, hi):
            x = rng.random(shape, dtype=np.float32)
            got = _run(saved, {name: x}, tmp_path / "cache")
            expected = ort_run(model, {name: x})
            assert outputs_match(list(got.values()), expected, 1e-2, 1e-3), (kind, shape)
        print(f"{kind}: {len(hybrid.engines)} engine(s), outputs match ORT at 3 shapes")


def test_onnx_cnns_run_in_real_engines(tmp_path):
    for case in onnx_light_cnns():
        hybrid = convert(case.model, TensorRTConfig(min_subgraph_size=1, cache_dir=tmp_path / "cache"))
        saved = hybrid.save(tmp_path / f"{case.name}.onnx")
        got = _run(saved, case.inputs, tmp_path / "cache")  # type: ignore[arg-type]
        assert outputs_match(list(got.values()), ort_run(case.model, case.inputs), 1e-2, 1e-3), case.name


def test_backend_suite_through_real_engines(tmp_path):
    """Every case plain ORT passes must pass with its supported nodes in TensorRT engines."""
    counts = {"cases": 0, "ort passes": 0, "passed through us": 0, "engines": 0}
    failures = []
    for case in backend_node_cases():
        counts["cases"] += 1
        model = lower_for_ort(case.model)
        try:
            reference = ort_run(model, case.inputs)
        except Exception:  # noqa: BLE001 - cases plain ORT cannot run are not ours to judge
            continue
        if not outputs_match(reference, case.expected, case.rtol, case.atol):  # type: ignore[arg-type]
            continue
        counts["ort passes"] += 1
        hybrid = convert(model, TensorRTConfig(min_subgraph_size=1, cache_dir=tmp_path / "cache"))
        counts["engines"] += sum(e.status == "built" for e in hybrid.engines)
        config = Config(hybrid.save(tmp_path / "case.onnx"))
        config.enable_use_gpu(0, 0)
        config.set_engine_cache_dir(tmp_path / "cache")
        try:
            got = Predictor(config).run_dict(case.inputs)  # type: ignore[arg-type]
            ok = outputs_match(list(got.values()), case.expected, max(case.rtol, 1e-3), max(case.atol, 1e-4))  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - record and go on
            ok, got = False, exc
        counts["passed through us"] += ok
        if not ok:
            failures.append(case.name)
    print("backend suite through TensorRT:", counts)
    assert failures == [], failures[:20]
