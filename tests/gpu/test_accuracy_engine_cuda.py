"""The accuracy guard measuring through engines on the GPU, TensorRT replaced at its narrow
interface by fake engines that read and write the CUDA addresses the engine segment binds
(through cupy): checks the guard's device path (CUDA device memory, the runtime's engine
segment, outputs copied back), not TensorRT's own numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridtrt import TensorRTConfig, convert
from hybridtrt.demo import gpu_usable
from tests.models import fp16_rounding

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not gpu_usable(), reason="needs a CUDA GPU with onnxruntime-gpu and cuda-python"),
]


@pytest.mark.parametrize("wrong", [[], ["Add"]])
def test_the_guard_measures_through_engines_on_the_gpu(tmp_path: Path, wrong: list[str]) -> None:
    pytest.importorskip("cupy")
    from hybridtrt.trt.builder import TensorRTBuilder
    from hybridtrt.trt.cache import EngineCache
    from tests.fake_tensorrt import FakeBackend

    backend = FakeBackend(on_gpu=True, wrong_in_16_bit=wrong)
    builder = TensorRTBuilder(backend, EngineCache(tmp_path / "cache"))
    config = TensorRTConfig(precision_mode="fp16", precision_guard=False, min_subgraph_size=1)
    engine = convert(fp16_rounding(), config, builder=builder).report().engines[0]
    assert engine.accuracy_measured_by == "tensorrt"
    assert [name for name, _ in backend.calls].count("execute") >= 1
    assert engine.accuracy_after[0]["rel_l2"] < 5e-3
    assert [d[0] for d in engine.accuracy_demoted] == (["add"] if wrong else [])
