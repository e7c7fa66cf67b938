"""Replays of fully bound runs, with CPU ORT sessions behind a small fake of the CUDA device."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx.helper as h
import onnxruntime as ort

from hybridtrt.runtime.replay import Replays
from tests import models


def chain() -> tuple[list[ort.InferenceSession], list[Any], dict[str, ort.OrtValue]]:
    """x -> (+x) -> a -> (*a) -> y, as two sessions bound to fixed buffers."""
    first = models.make([h.make_node("Add", ["x", "x"], ["a"])], [models.f32("x", [2])],
                        [models.f32("a", [2])])
    second = models.make([h.make_node("Mul", ["a", "a"], ["y"])], [models.f32("a", [2])],
                         [models.f32("y", [2])])
    sessions = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
                for m in (first, second)]
    buffers = {n: ort.OrtValue.ortvalue_from_numpy(np.zeros(2, np.float32)) for n in "xay"}
    bindings = []
    for sess, (i, o) in zip(sessions, [("x", "a"), ("a", "y")]):
        binding = sess.io_binding()
        binding.bind_ortvalue_input(i, buffers[i])
        binding.bind_ortvalue_output(o, buffers[o])
        bindings.append(binding)
    return sessions, bindings, buffers


class FakeDevice:
    """Stages host inputs into one buffer per name; owns the bound outputs."""

    def __init__(self, buffers: dict[str, ort.OrtValue]) -> None:
        self.buffers = buffers
        self.trace: list[tuple[Any, Any, Any]] | None = None
        self.generation = 0

    def binding_generation(self) -> int:
        return self.generation

    def begin_trace(self) -> None:
        self.trace = []

    def end_trace(self) -> list[tuple[Any, Any, Any]] | None:
        trace, self.trace = self.trace, None
        return trace

    def staged(self, name: str, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            self.buffers[name].update_inplace(value)
            return self.buffers[name]
        return value

    def owns(self, value: Any) -> bool:
        return any(value is b for n, b in self.buffers.items() if n != "x")


def test_a_recorded_run_replays_with_new_inputs_and_stops_when_a_step_fails() -> None:
    sessions, bindings, buffers = chain()
    device = FakeDevice(buffers)
    replays = Replays(device, segments=2)
    feeds = {"x": np.array([1, 2], np.float32)}
    key = replays.key(feeds, ["y"], True)
    assert key is not None and replays.run(key, feeds) is None  # nothing recorded yet
    replays.record(key, feeds, {"y": buffers["y"]}, [(s, b, None) for s, b in zip(sessions, bindings)])
    out = replays.run(key, {"x": np.array([3, -1], np.float32)})
    assert out is not None and out["y"].numpy().tolist() == [36, 4] and replays.runs == 1
    device.generation += 1  # a binding changed: the replay is stale
    assert replays.run(key, feeds) is None
    replays.record(key, feeds, {"y": buffers["y"]}, [(s, b, None) for s, b in zip(sessions, bindings)])
    assert replays.run(key, feeds) is not None
    bindings[1].bind_output("y", "cpu")  # a step that now fails (its output shape is unknown)
    bindings[1].bind_ortvalue_input("a", ort.OrtValue.ortvalue_from_numpy(np.zeros(3, np.float32)))
    assert replays.run(key, feeds) is None and replays.run(key, feeds) is None  # dropped


def test_runs_that_cannot_be_replayed_are_not_recorded() -> None:
    sessions, bindings, buffers = chain()
    replays = Replays(FakeDevice(buffers), segments=2)
    feeds = {"x": np.array([1, 2], np.float32)}
    key = replays.key(feeds, ["y"], True)
    assert key is not None
    steps = [(s, b, None) for s, b in zip(sessions, bindings)]
    replays.record(key, feeds, {"y": buffers["y"]}, None)  # a segment bound afresh
    replays.record(key, feeds, {"y": buffers["y"]}, steps[:1])  # an engine segment: not traced
    replays.record(key, feeds, {"y": np.ones(2, np.float32)}, steps)  # an output not in a buffer
    assert replays.run(key, feeds) is None
    device_array = type("CudaArray", (), {"__cuda_array_interface__": {}})()
    assert replays.key({"x": device_array}, ["y"], True) is None  # bound where it lies
