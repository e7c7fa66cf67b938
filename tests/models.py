"""Tiny ONNX models built in code for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx.helper as h
from onnx import TensorProto, numpy_helper

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


def shared_shape_model() -> onnx.ModelProto:
    """A target shape computed from Shape(x) feeds a Reshape in TensorRT and a ConstantOfShape
    kept in ONNX Runtime (``disable_ops=["ConstantOfShape"]``)."""
    nodes = [
        h.make_node("Shape", ["x"], ["s"], name="shape"),
        h.make_node("Constant", [], ["i0"], name="index0",
                    value=numpy_helper.from_array(np.array([0], np.int64))),
        h.make_node("Gather", ["s", "i0"], ["n"], name="batch"),
        h.make_node("Constant", [], ["rest"], name="rest",
                    value=numpy_helper.from_array(np.array([2, 3], np.int64))),
        h.make_node("Concat", ["n", "rest"], ["target"], name="target", axis=0),
        h.make_node("Relu", ["x"], ["a"], name="relu_a"),
        h.make_node("Reshape", ["a", "target"], ["b"], name="reshape"),
        h.make_node("Relu", ["b"], ["y"], name="relu_y"),
        h.make_node("ConstantOfShape", ["target"], ["z"], name="fill",
                    value=numpy_helper.from_array(np.array([1.5], np.float32))),
    ]
    return make(nodes, [f32("x", ["N", 6])], [f32("y", ["N", 2, 3]), f32("z", ["N", 2, 3])])


def conv_classifier(channels: int = 8, size: int = 16) -> onnx.ModelProto:
    """x (1x3xSIZExSIZE) -> Conv -> Relu -> GlobalAveragePool -> Flatten -> MatMul -> y (1x5)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (channels, 3, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.normal(0, 0.3, (channels, 5)).astype(np.float32), "fc")
    nodes = [h.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c"], ["r"], name="relu"),
             h.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             h.make_node("Flatten", ["p"], ["f"], name="flatten"),
             h.make_node("MatMul", ["f", "fc"], ["y"], name="fc")]
    return make(nodes, [f32("x", [1, 3, size, size])], [f32("y", [1, 5])], [w, fc])


def fp16_rounding() -> onnx.ModelProto:
    """x (2x16) -> Mul(w) -> Add(x) -> Sin -> y: plain FP16 rounding, no overflow, moves y by
    about 1e-3 (relative)."""
    nodes = [h.make_node("Mul", ["x", "w"], ["a"], name="mul"),
             h.make_node("Add", ["a", "x"], ["b"], name="add"),
             h.make_node("Sin", ["b"], ["y"], name="sin")]
    weights = [numpy_helper.from_array(np.full(16, 3.3, np.float32), "w")]
    return make(nodes, [f32("x", [2, 16])], [f32("y", [2, 16])], weights)


def matmul_chain_file(folder: Path, count: int = 8, batch: int | str = 2, width: int = 96,
                      pieces: int = 2) -> Path:
    """``folder/model.onnx``: ``count`` MatMuls cut into ``pieces`` by Sigmoids, weights in its
    data file ``model.onnx.data``."""
    rng = np.random.default_rng(0)
    nodes, weights, previous = [], [], "x"
    for k in range(count):
        w = rng.standard_normal((width, width), dtype=np.float32) * np.float32(width ** -0.5)
        weights.append(numpy_helper.from_array(w, f"w{k}"))
        nodes.append(h.make_node("MatMul", [previous, f"w{k}"], [f"h{k}"], name=f"mm{k}"))
        previous = f"h{k}"
        if (k + 1) % (count // pieces) == 0 and k < count - 1:
            name = "mid" if pieces == 2 else f"mid{k}"
            nodes.append(h.make_node("Sigmoid", [previous], [name], name=name))
            previous = name
    model = make(nodes, [f32("x", [batch, width])], [f32(previous, [batch, width])], weights)
    model.ir_version = 9
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="model.onnx.data")
    return path


def fp16_overflow(big: float = 60000.0) -> onnx.ModelProto:
    """x (2x16) -> Add -> Mul by ``big`` -> Div by ``big`` -> Relu -> Add -> y: exact in FP32,
    infinite in FP16 where x + bias > 65504 / big (a weight within FP16's range)."""
    nodes = [h.make_node("Add", ["x", "bias"], ["a"], name="add"),
             h.make_node("Mul", ["a", "big"], ["m"], name="scale_up"),
             h.make_node("Div", ["m", "big"], ["d"], name="scale_down"),
             h.make_node("Relu", ["d"], ["r"], name="relu"),
             h.make_node("Add", ["r", "bias"], ["y"], name="shift")]
    weights = [numpy_helper.from_array(np.linspace(-1, 1, 16).astype(np.float32), "bias"),
               numpy_helper.from_array(np.array(big, np.float32), "big")]
    return make(nodes, [f32("x", [2, 16])], [f32("y", [2, 16])], weights)


def offset_classifier(offset: float = 6.0, dim: int = 64, layers: int = 3,
                      seed: int = 0) -> onnx.ModelProto:
    """x (1, dim) -> (MatMul, Relu) x layers -> MatMul -> Softmax over 2 classes.

    Both logits share a large offset and differ by a small gap, so an input is confident only
    when the gap is large: rounding the logits to BF16 barely moves a confident input's
    probabilities but moves those of an input near the boundary a lot.
    """
    rng = np.random.default_rng(seed)
    weights = [numpy_helper.from_array(rng.normal(0, np.sqrt(2 / dim), (dim, dim)).astype(np.float32),
                                       f"w{k}") for k in range(layers)]
    common, gap = np.abs(rng.normal(0, 1, dim)), rng.normal(0, 1, dim)
    head = np.stack([common * offset + gap, common * offset - gap], 1) / np.sqrt(dim)
    weights.append(numpy_helper.from_array(head.astype(np.float32), "head"))
    nodes, last = [], "x"
    for k in range(layers):
        nodes += [h.make_node("MatMul", [last, f"w{k}"], [f"m{k}"], name=f"dense{k}"),
                  h.make_node("Relu", [f"m{k}"], [f"r{k}"], name=f"relu{k}")]
        last = f"r{k}"
    nodes += [h.make_node("MatMul", [last, "head"], ["logits"], name="head"),
              h.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1)]
    return make(nodes, [f32("x", [1, dim])], [f32("probs", [1, 2])], weights)
