"""FP32 emulation of a low-precision graph: how ONNX Runtime runs FP16/BF16 clusters faithfully."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from hybridtrt.core.references import tensor_values

__all__ = ["LOW_PRECISION", "as_fp32", "low_precision_types"]

LOW_PRECISION = frozenset({TensorProto.FLOAT16, TensorProto.BFLOAT16})


def low_precision_types(graph: onnx.GraphProto) -> set[int]:
    """The 16-bit float types (FP16, BF16) a graph computes in."""
    found = {t.data_type for t in graph.initializer}
    found |= {v.type.tensor_type.elem_type for v in graph.value_info}
    found |= {a.i for n in graph.node if n.op_type == "Cast" for a in n.attribute if a.name == "to"}
    return found & LOW_PRECISION


def as_fp32(graph: onnx.GraphProto, types: set[int]) -> onnx.GraphProto:
    """A copy of a low-precision graph that computes in FP32 and rounds every value of
    ``types`` (FP16 and/or BF16) to that type after the node that makes it.

    ONNX Runtime lacks BF16 kernels for most ops (and ONNX schemas before opset 22 refuse BF16
    for many), and on the CPU it runs FP16 nodes without an FP16 kernel in FP32 and drops the
    casts around them, losing the rounding. Explicit rounding after each node reproduces 16-bit
    storage, the main source of the error (TensorRT, which fuses pointwise chains, rounds less
    often, so the emulation errs on the pessimistic side). Nested graphs are left as they are.
    """
    result = onnx.GraphProto()
    result.CopyFrom(graph)
    low = {v.name: v.type.tensor_type.elem_type for v in result.value_info
           if v.type.tensor_type.elem_type in types}
    for k, tensor in enumerate(result.initializer):
        if tensor.data_type in types:
            result.initializer[k].CopyFrom(
                numpy_helper.from_array(tensor_values(tensor).astype(np.float32), tensor.name))
    nodes = []
    for node in result.node:
        for attr in node.attribute:
            if attr.HasField("t") and attr.t.data_type in types:
                attr.t.CopyFrom(numpy_helper.from_array(
                    tensor_values(attr.t).astype(np.float32), attr.t.name))
        rounded = {o: low[o] for o in node.output if o in low}
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i in types:
                rounded = {o: attr.i for o in node.output}
                attr.i = TensorProto.FLOAT  # the rounding pair below does the 16-bit step
        node.output[:] = [f"{o}__fp32" if o in rounded else o for o in node.output]
        nodes.append(node)
        for out, dtype in rounded.items():
            nodes.append(onnx.helper.make_node("Cast", [f"{out}__fp32"], [f"{out}__16"],
                                               name=f"{out}__to_16", to=dtype))
            nodes.append(onnx.helper.make_node("Cast", [f"{out}__16"], [out],
                                               name=f"{out}__to_fp32", to=TensorProto.FLOAT))
    del result.node[:]
    result.node.extend(nodes)
    for value in result.value_info:
        if value.type.tensor_type.elem_type in types:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    return result
