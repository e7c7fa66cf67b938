"""Which segments may be captured as CUDA graphs (the check runs anywhere; capture needs a GPU)."""

from __future__ import annotations

import numpy as np
import onnx.helper as h
from onnx import TensorProto, numpy_helper

from hybridtrt.runtime.graphs import graph_safe
from tests import models


def reshaped(shape_from_input: bool) -> bool:
    shape = h.make_tensor_value_info("s", TensorProto.INT64, [2])
    inits = [] if shape_from_input else [numpy_helper.from_array(np.array([1, 8], np.int64), "s")]
    nodes = [h.make_node("Relu", ["x"], ["r"]), h.make_node("Reshape", ["r", "s"], ["y"])]
    inputs = [models.f32("x", [2, 4])] + ([shape] if shape_from_input else [])
    return graph_safe(models.make(nodes, inputs, [models.f32("y", [1, 8])], inits))


def test_shape_inputs_must_be_constants_of_the_segment() -> None:
    assert reshaped(shape_from_input=False)
    assert not reshaped(shape_from_input=True)  # ORT would copy it to the host every run


def test_only_listed_ops_and_no_constant_or_passthrough_outputs() -> None:
    x = models.f32("x", [1, 4])
    conv_like = models.make([h.make_node("Relu", ["x"], ["y"])], [x], [models.f32("y", [1, 4])])
    assert graph_safe(conv_like)
    concat = models.make([h.make_node("Concat", ["x", "x"], ["y"], axis=1)], [x],
                         [models.f32("y", [1, 8])])
    assert not graph_safe(concat)
    constant = models.make([h.make_node("Relu", ["x"], ["y"]),
                            h.make_node("Constant", [], ["c"], value=numpy_helper.from_array(
                                np.ones(1, np.float32)))], [x],
                           [models.f32("y", [1, 4]), models.f32("c", [1])])
    assert not graph_safe(constant)  # ORT copies a constant output from the host every run
