"""Tiny ONNX models built in code for the tests."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper as h
from onnx import TensorProto

OPSET = 17


def make(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
         outputs: list[onnx.ValueInfoProto], initializers: list[onnx.TensorProto] = ()) -> onnx.ModelProto:  # type: ignore[assignment]
    graph = h.make_graph(nodes, "test", inputs, outputs, initializer=list(initializers))
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def f32(name: str, shape: list[int | str | None] | None) -> onnx.ValueInfoProto:
    return h.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def split_chain(batch: int | str = "N", width: int = 4) -> onnx.ModelProto:
    """x -> Relu -> Add(w) -> Mul -> Sin -> Relu -> Add(c) -> Mul -> y.

    With ``disable_ops=["Sin"]`` it gives two clusters: {relu1, add1, mul1} and {relu2, add2, mul2}.
    """
    nodes = [
        h.make_node("Relu", ["x"], ["a"], name="relu1"),
        h.make_node("Add", ["a", "w"], ["b"], name="add1"),
        h.make_node("Mul", ["b", "b"], ["c"], name="mul1"),
        h.make_node("Sin", ["c"], ["d"], name="sin"),
        h.make_node("Relu", ["d"], ["e"], name="relu2"),
        h.make_node("Add", ["e", "c"], ["f"], name="add2"),
        h.make_node("Mul", ["f", "w"], ["y"], name="mul2"),
    ]
    w = onnx.numpy_helper.from_array(np.arange(width, dtype=np.float32) / width, "w")
    return make(nodes, [f32("x", [batch, width])], [f32("y", [batch, width])], [w])


def shape_pull_model() -> onnx.ModelProto:
    """A Reshape in the second cluster reads Shape(a) from the first: Shape gets pulled in."""
    nodes = [
        h.make_node("Relu", ["x"], ["a"], name="relu_a"),
        h.make_node("Shape", ["a"], ["s"], name="shape"),
        h.make_node("Sin", ["a"], ["b"], name="sin"),
        h.make_node("Flatten", ["b"], ["fb"], name="flatten"),
        h.make_node("Reshape", ["fb", "s"], ["c"], name="reshape"),
        h.make_node("Relu", ["c"], ["y"], name="relu_y"),
    ]
    return make(nodes, [f32("x", ["N", 2, 3])], [f32("y", ["N", 2, 3])])


def reshape_by_input_model() -> onnx.ModelProto:
    """Reshape's target shape is a model input: TensorRT would need it as a host shape tensor."""
    nodes = [
        h.make_node("Relu", ["x"], ["a"], name="relu_a"),
        h.make_node("Reshape", ["a", "shape"], ["b"], name="reshape"),
        h.make_node("Relu", ["b"], ["y"], name="relu_y"),
    ]
    shape = h.make_tensor_value_info("shape", TensorProto.INT64, [2])
    return make(nodes, [f32("x", [2, 3]), shape], [f32("y", [3, 2])])
