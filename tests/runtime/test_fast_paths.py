"""Every run path gives what ONNX Runtime gives on the original model, never a stale answer.

Each path runs shape A, then shape B, then A and B again with new values (and A through the
checked way in between); a path that kept an earlier run's inputs, outputs or checks fails.
The GPU paths run on the host-backed CUDA device of ``test_cuda_device_logic``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.helper as h
import onnxruntime as ort
import pytest

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.runtime import Config, Predictor, create_predictor
from tests import models
from tests.runtime.test_cuda_device_logic import HostBackedCuda

RANGE = dict(min_input_shape=[1, 4], optim_input_shape=[2, 4], max_input_shape=[8, 4])


def shared_input_model() -> onnx.ModelProto:
    """``z`` is read on both sides of a Sin: with isolated engines, by two segments (staged)."""
    nodes = [h.make_node("Relu", ["x"], ["a"]), h.make_node("Add", ["a", "z"], ["b"]),
             h.make_node("Sin", ["b"], ["c"]), h.make_node("Mul", ["c", "z"], ["y"])]
    return models.make(nodes, [models.f32("x", ["N", 4]), models.f32("z", ["N", 4])],
                       [models.f32("y", ["N", 4])])


CASES = {
    # (model, converter config, isolate engines, run on the (host-backed) GPU device)
    "single session, cpu": (models.split_chain(), TensorRTConfig(
        inputs=[Input("x", **RANGE)], disable_ops=["Relu", "Add", "Mul"]),  # type: ignore[arg-type]
                            False, False),
    "single session, gpu": (models.split_chain(), TensorRTConfig(
        inputs=[Input("x", **RANGE)], disable_ops=["Relu", "Add", "Mul"]),  # type: ignore[arg-type]
                            False, True),
    "loop, cpu": (models.split_chain(), TensorRTConfig(
        inputs=[Input("x", **RANGE)], disable_ops=["Sin"]), True, False),  # type: ignore[arg-type]
    "replay, gpu": (models.split_chain(), TensorRTConfig(
        inputs=[Input("x", **RANGE)], disable_ops=["Sin"]), True, True),  # type: ignore[arg-type]
    "replay with staged inputs, gpu": (shared_input_model(), TensorRTConfig(
        inputs=[Input("x", **RANGE), Input("z", **RANGE)],  # type: ignore[arg-type]
        disable_ops=["Sin"], min_subgraph_size=1), True, True),
}


def make(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Predictor:
    model, config, isolate, gpu = CASES[case]
    if gpu:
        from hybridtrt.runtime import predictor as predictor_module

        monkeypatch.setattr(predictor_module, "open_device",
                            lambda use_gpu, device_id, memory, threads, share, graphs=False:
                            HostBackedCuda(0, 0, share, graphs))
    settings = Config(convert(model, config).save(tmp_path / "m.onnx"))
    settings.isolate_engines(isolate)
    return create_predictor(settings)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_run_path_answers_new_values_and_shapes_never_a_stale_result(
        case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = make(case, tmp_path, monkeypatch)
    model = CASES[case][0]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in runner.get_inputs()]
    checked: list[int] = []
    check = runner.input_checks.accepted

    def counted(feeds: Any) -> dict[str, Any]:
        checked.append(1)
        return check(feeds)

    monkeypatch.setattr(runner.input_checks, "accepted", counted)
    rng = np.random.default_rng(7)
    calls = 0
    for rows, names_given in ((2, None), (2, None), (2, None), (5, None), (5, None), (2, None),
                              (2, ["y"]), (2, None), (5, None), (5, None), (2, None)):
        feeds = {n: rng.standard_normal((rows, 4)).astype(np.float32) for n in names}
        kept = {n: v.copy() for n, v in feeds.items()}
        got: Any = runner.run_dict(feeds, names_given)["y"]
        calls += 1
        np.testing.assert_allclose(got, session.run(None, kept)[0], rtol=1e-5, atol=1e-6)
        for name in names:
            np.testing.assert_array_equal(feeds[name], kept[name])  # the caller's arrays stay
        again = runner.run(None, {n: v * 2 for n, v in kept.items()})[0]  # and the old result, too
        calls += 1
        np.testing.assert_allclose(got, session.run(None, kept)[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(again, session.run(None, {n: v * 2 for n, v in kept.items()})[0],
                                   rtol=1e-5, atol=1e-6)
    if not case.startswith("loop"):
        assert len(checked) < calls  # the fast path was taken (the test covers it)
