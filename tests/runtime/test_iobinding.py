"""``Predictor.io_binding()`` / ``run_with_iobinding`` behave as ONNX Runtime's on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hybridtrt import Input, InputError, TensorRTConfig, convert
from hybridtrt.runtime import Config, create_predictor
from tests import models

CONFIG = TensorRTConfig(inputs=[Input("x", [1, 4], [2, 4], [8, 4])], disable_ops=["Sin"])


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    model = models.split_chain()
    saved = convert(model, CONFIG).save(tmp_path_factory.mktemp("io") / "m.onnx")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return create_predictor(Config(saved)), session


def test_bound_inputs_and_outputs_match_onnx_runtime(pair) -> None:  # type: ignore[no-untyped-def]
    predictor, session = pair
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    results = []
    for runner in (predictor, session):
        binding = runner.io_binding()
        binding.bind_cpu_input("x", x)
        for output in runner.get_outputs():
            binding.bind_output(output.name, "cpu")
        runner.run_with_iobinding(binding)
        results.append(binding.copy_outputs_to_cpu())
    assert len(results[0]) == len(results[1])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    pointer = predictor.io_binding()  # the same input bound by address, as bind_input takes it
    pointer.bind_input("x", "cpu", 0, np.float32, list(x.shape), x.ctypes.data)
    predictor.run_with_iobinding(pointer)  # no outputs bound: every output, in model order
    for ours, theirs in zip(pointer.get_outputs(), results[1]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_binding_mistakes_name_the_tensor(pair) -> None:  # type: ignore[no-untyped-def]
    predictor, _ = pair
    binding = predictor.io_binding()
    with pytest.raises(InputError, match="input 'nope' is not one of the model's inputs"):
        binding.bind_cpu_input("nope", np.zeros(1, np.float32))
    with pytest.raises(InputError, match="bound on CUDA, but the predictor runs on the CPU"):
        binding.bind_output(predictor.get_outputs()[0].name, "cuda")
    with pytest.raises(InputError, match="hybridtrt allocates outputs"):
        binding.bind_output(predictor.get_outputs()[0].name, "cpu", 0, np.float32, [3, 4], 1234)
    binding.bind_cpu_input("x", np.zeros((2, 5), np.float32))  # a wrong shape: refused at run
    with pytest.raises(InputError, match="'x'"):
        predictor.run_with_iobinding(binding)
