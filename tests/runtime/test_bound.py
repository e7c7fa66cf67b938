"""Bound runs (outputs in buffers bound once per input signature), on ONNX Runtime's CPU provider.

The CUDA device uses the same class with ``"cuda"`` buffers; tests/gpu runs that path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx.helper as h
import onnxruntime as ort
import pytest
from onnx import TensorProto

from hybridtrt.runtime.devices.bound import BoundRuns
from hybridtrt.runtime.signatures import signature
from tests import models


def session(nodes: list[Any], inputs: list[Any], outputs: list[Any]) -> ort.InferenceSession:
    model = models.make(nodes, inputs, outputs)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def doubling() -> ort.InferenceSession:
    return session([h.make_node("Add", ["x", "x"], ["y"])], [models.f32("x", ["N", 3])],
                   [models.f32("y", ["N", 3])])


def bind(binding: Any, name: str, value: Any) -> None:
    if isinstance(value, np.ndarray):
        binding.bind_cpu_input(name, value)
    else:
        binding.bind_ortvalue_input(name, value)


def fresh(sess: ort.InferenceSession, inputs: dict[str, Any]) -> list[Any]:
    binding = sess.io_binding()
    for name, value in inputs.items():
        bind(binding, name, value)
    for out in sess.get_outputs():
        binding.bind_output(out.name, "cpu")
    sess.run_with_iobinding(binding)
    return list(binding.get_outputs())


def run(runs: BoundRuns, sess: ort.InferenceSession, inputs: dict[str, Any]) -> tuple[list[Any], bool]:
    """What the CUDA device does: a bound run if there is one, else a fresh run it learns from."""
    key = signature(inputs)
    bound = runs.run(sess, key, inputs, bind)
    if bound is not None:
        return bound.outputs, True
    values = fresh(sess, inputs)
    runs.learn(sess, key, [o.name for o in sess.get_outputs()], values)
    return values, False


def test_second_run_writes_into_the_same_buffers_with_new_inputs() -> None:
    runs, sess = BoundRuns("cpu"), doubling()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    first, bound = run(runs, sess, {"x": x})
    assert not bound and not runs.owns(first[0])
    second, bound = run(runs, sess, {"x": x + 1})
    assert bound and runs.owns(second[0])
    np.testing.assert_array_equal(second[0].numpy(), 2 * (x + 1))
    third, _ = run(runs, sess, {"x": x})
    assert third[0] is second[0]  # one buffer per signature
    np.testing.assert_array_equal(third[0].numpy(), 2 * x)
    other, bound = run(runs, sess, {"x": np.ones((4, 3), np.float32)})  # a new signature
    assert not bound and other[0].shape() == [4, 3]


def test_values_bound_by_reference_are_rebound_only_when_they_change() -> None:
    runs, sess = BoundRuns("cpu"), doubling()
    value = ort.OrtValue.ortvalue_from_numpy(np.ones((1, 3), np.float32))
    calls: list[str] = []

    def counting(binding: Any, name: str, item: Any) -> None:
        calls.append(name)
        bind(binding, name, item)

    key = signature({"x": value})
    runs.learn(sess, key, ["y"], fresh(sess, {"x": value}))
    for _ in range(3):
        runs.run(sess, key, {"x": value}, counting)
    assert calls == ["x"]
    value.update_inplace(np.full((1, 3), 5, np.float32))  # same buffer, new contents
    out = runs.run(sess, key, {"x": value}, counting)
    assert out is not None and out.outputs[0].numpy().tolist() == [[10, 10, 10]]
    other = ort.OrtValue.ortvalue_from_numpy(np.full((1, 3), 2, np.float32))
    out = runs.run(sess, key, {"x": other}, counting)
    assert calls == ["x", "x"] and out is not None and out.outputs[0].numpy().tolist() == [[4, 4, 4]]
    # Host arrays are rebound every run, even the same array: on CUDA, ORT copies them to the
    # device as it binds, so new contents in an old array would otherwise go unseen.
    array = np.ones((1, 3), np.float32)
    host_key = signature({"x": array})
    runs.learn(sess, host_key, ["y"], fresh(sess, {"x": array}))
    calls.clear()
    for _ in range(2):
        runs.run(sess, host_key, {"x": array}, counting)
    assert calls == ["x", "x"]


def test_a_data_dependent_output_shape_drops_the_session_back_to_fresh_runs() -> None:
    runs = BoundRuns("cpu")
    sess = session([h.make_node("NonZero", ["x"], ["y"])], [models.f32("x", [4])],
                   [h.make_tensor_value_info("y", TensorProto.INT64, [1, None])])
    run(runs, sess, {"x": np.array([1, 0, 0, 0], np.float32)})
    values, bound = run(runs, sess, {"x": np.array([1, 2, 0, 3], np.float32)})
    assert not bound  # the bound buffer has shape [1, 1]: ORT refuses it, a fresh run answers
    assert values[0].numpy().tolist() == [[0, 1, 3]]
    values, bound = run(runs, sess, {"x": np.array([1, 0, 0, 0], np.float32)})
    assert not bound and not runs.owns(values[0])  # never bound again


def test_signatures_per_session_are_limited_and_the_least_recently_used_goes() -> None:
    runs, sess = BoundRuns("cpu", limit=2), doubling()
    for rows in (1, 2, 3):  # 1 goes when 3 is bound
        run(runs, sess, {"x": np.ones((rows, 3), np.float32)})
    assert [run(runs, sess, {"x": np.ones((rows, 3), np.float32)})[1]
            for rows in (2, 3, 1, 3, 2)] == [True, True, False, True, False]
    out, bound = run(runs, sess, {"x": np.full((3, 3), 2, np.float32)})
    assert bound and out[0].numpy().tolist() == [[4, 4, 4]] * 3 and runs.owns(out[0])


@pytest.mark.parametrize("value", [[np.ones(2, np.float32)], None])
def test_inputs_that_are_not_tensors_have_no_signature(value: Any) -> None:
    assert signature({"x": np.ones(1, np.float32), "s": value}) is None
    assert signature({"x": np.ones((2, 1), np.float32)}) == (("x", (2, 1), "<f4"),)


def test_bound_buffers_signature_is_remembered_and_equal_to_the_computed_one() -> None:
    runs, sess = BoundRuns("cpu"), doubling()
    run(runs, sess, {"x": np.ones((2, 3), np.float32)})
    out, _ = run(runs, sess, {"x": np.ones((2, 3), np.float32)})
    assert runs.signature({"y": out[0]}) == signature({"y": out[0]}) == (
        ("y", (2, 3), "tensor(float)"),)


def test_empty_outputs_are_bound_too() -> None:
    runs = BoundRuns("cpu")
    sess = session([h.make_node("Slice", ["x", "s", "e"], ["y"])],
                   [models.f32("x", [4]), h.make_tensor_value_info("s", TensorProto.INT64, [1]),
                    h.make_tensor_value_info("e", TensorProto.INT64, [1])],
                   [models.f32("y", [None])])
    feeds = {"x": np.ones(4, np.float32), "s": np.array([2]), "e": np.array([2])}
    run(runs, sess, feeds)
    values, bound = run(runs, sess, feeds)
    assert bound and values[0].shape() == [0]


def test_outputs_named_on_host_get_host_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shape value ORT writes on the host is bound to a host buffer; the rest to the device's."""
    made: list[str] = []
    allocate = ort.OrtValue.ortvalue_from_shape_and_type

    def recorded(shape: list[int], dtype: Any, device: str = "cpu", device_id: int = 0) -> Any:
        made.append(device)
        return allocate(shape, dtype, "cpu", 0)  # (the "device" is host memory here)

    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_shape_and_type", staticmethod(recorded))
    sess = session([h.make_node("Add", ["x", "x"], ["y"]), h.make_node("Shape", ["x"], ["s"])],
                   [models.f32("x", ["N", 3])],
                   [models.f32("y", ["N", 3]), h.make_tensor_value_info("s", TensorProto.INT64, [2])])
    runs = BoundRuns("gpu")
    x = {"x": np.ones((2, 3), np.float32)}
    runs.learn(sess, signature(x), ["y", "s"], fresh(sess, x), on_host={"s"})
    assert made == ["gpu", "cpu"]
    outputs, was_bound = run(runs, sess, x)
    assert was_bound and outputs[1].numpy().tolist() == [2, 3]
