"""Which GPU segments may be captured as CUDA graphs (``Config.enable_cuda_graph``) and why
not (``graph_refusal``, computed from the model alone), which may hold one graph only, and which
may run without ONNX Runtime's stream sync at the end of each run. The ONNX Runtime behaviour
behind each rule: docs/PERFORMANCE.md, "CUDA graphs: what may be captured".
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading

import onnx

from hybridtrt.core.graph import SHAPE_SOURCES
from hybridtrt.core.graph import tensor_info_from_value
from hybridtrt.runtime.static_dims import fold_static_dims

__all__ = ["CAPTURE_LOCK", "DISABLED_FUSIONS", "GRAPHS_OFF", "GRAPH_OPS", "GraphStatus",
           "IN_TENSORRT", "graph_model", "graph_refusal", "graph_safe", "single_graph",
           "unsynced_safe"]

CAPTURE_LOCK = threading.Lock()  # held by graph sessions' runs: ORT captures in global mode
DISABLED_FUSIONS = ["MatMulAddFusion"]  # for graph sessions: no Gemm of ORT's making

GRAPHS_OFF = "CUDA graphs are off (config.enable_cuda_graph())"
IN_TENSORRT = "a TensorRT engine (runs in TensorRT, not ORT)"


@dataclasses.dataclass(frozen=True)
class GraphStatus:
    """Whether a segment's runs are captured as a CUDA graph, and if not, why (the op or value
    that prevents it, ORT's refusal, or that graphs are off or ended at run time)."""

    segment: str
    captured: bool
    reason: str  # "" when captured


GRAPH_OPS = frozenset({
    "Abs", "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat",
    "ConstantOfShape", "Conv", "ConvTranspose", "Div", "Dropout", "Elu", "Erf", "Exp", "Flatten",
    "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "HardSwish", "Identity",
    "LayerNormalization", "LeakyRelu", "Log", "LogSoftmax", "MatMul", "MaxPool", "Mul", "Neg",
    "Pow", "PRelu", "Reciprocal", "ReduceMax", "ReduceMean", "ReduceSum", "Relu", "Reshape",
    "Resize", "Selu", "Shape", "Sigmoid", "Slice", "Softmax", "Softplus", "Split", "Sqrt", "Squeeze",
    "Sub", "Sum", "Tanh", "Transpose", "Unsqueeze",
})

# Inputs that ORT's CUDA kernels read on the host: safe only when constants or shape values.
_HOST_INPUTS = {
    "Clip": (1, 2), "ConstantOfShape": (0,), "Dropout": (1, 2), "ReduceMax": (1,),
    "ReduceMean": (1,), "ReduceSum": (1,), "Reshape": (1,), "Resize": (1, 2, 3),
    "Slice": (1, 2, 3, 4), "Split": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
}
_MAX_CONCAT_INPUTS = 32  # more: ORT stages the input pointers through pinned host memory

_Dims = list[int | str | None]  # a tensor's dims: sizes, symbols, or None where unknown


def graph_safe(model: onnx.ModelProto) -> bool:
    """Whether a segment's model may be captured as a CUDA graph (see the module's notes)."""
    return graph_refusal(model) is None


def graph_refusal(model: onnx.ModelProto) -> str | None:
    """Why a segment's model may not be captured as a CUDA graph, naming the node or value
    (None: it may be; see the module's notes)."""
    graph = model.graph
    constants = {t.name for t in graph.initializer}
    constants.update(o for n in graph.node if n.op_type == "Constant" for o in n.output)
    host: set[str] = set()  # shape values, computed on the host
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            continue
        if node.domain not in ("", "ai.onnx") or _holds_graphs(node):
            return f"node {node.name or node.output[0]!r} ({node.op_type}) cannot be captured"
        read = [i for i in node.input if i]
        if read and all(i in constants for i in read) and node.op_type not in SHAPE_SOURCES:
            constants.update(node.output)  # folded by ORT when the session is made
            continue
        if node.op_type in SHAPE_SOURCES or (
                any(i in host for i in read) and all(i in host or i in constants for i in read)):
            host.update(node.output)  # a node of the shape subgraph (on the CPU, any op)
            continue
        if not _node_safe(node):
            return f"node {node.name or node.output[0]!r} ({node.op_type}) cannot be captured"
        allowed = _HOST_INPUTS.get(node.op_type, ())
        for index, name in enumerate(node.input):
            if name in host and index not in allowed:  # a copy every run
                return (f"node {node.name or node.output[0]!r} ({node.op_type}) reads shape "
                        f"value {name!r} on the device")
            if index in allowed and name and name not in constants and name not in host:
                return (f"node {node.name or node.output[0]!r} ({node.op_type}) reads device "
                        f"value {name!r} on the host")
    passthrough = constants | host | {i.name for i in graph.input}
    for output in graph.output:
        if output.name in passthrough:
            return f"output {output.name!r} is a constant, a shape value or an input passed through"
    return None


def _holds_graphs(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for a in node.attribute)


def _node_safe(node: onnx.NodeProto) -> bool:
    if node.op_type not in GRAPH_OPS:
        return False
    if node.op_type == "Concat" and len(node.input) > _MAX_CONCAT_INPUTS:
        return False
    if node.op_type == "Split" and len(node.output) > _MAX_CONCAT_INPUTS:
        return False
    return not (node.op_type == "Resize" and any(
        a.name == "antialias" and a.i for a in node.attribute))


def single_graph(model: onnx.ModelProto) -> bool:
    """Whether a graph-safe segment may hold one CUDA graph only (see the module's notes).

    Asked of the segment's own model: a Gemm (which ``graph_model`` makes a MatMul) has a 2-D
    right operand, a single GEMM."""
    return _stages_host_memory(model)


def unsynced_safe(model: onnx.ModelProto) -> bool:
    """Whether a segment's runs may skip ORT's stream sync at their end (see the module's notes)."""
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            continue
        if node.domain not in ("", "ai.onnx") or not (node.op_type == "Gemm" or _node_safe(node)):
            return False
    return not _stages_host_memory(model)


def _stages_host_memory(model: onnx.ModelProto) -> bool:
    """Whether a kernel of ``model`` may stage its arguments through pinned host memory."""
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
    if any(n.op_type == "Concat" for n in model.graph.node) and _concat_staged():
        return True
    if not matmuls:
        return False
    dims = _known_dims(model, inferred=False)
    if any(n.input[0] not in dims or n.input[1] not in dims for n in matmuls):
        dims = _known_dims(model, inferred=True)
    return any(_batched_unevenly(dims.get(n.input[0]), dims.get(n.input[1])) for n in matmuls)


def _batched_unevenly(left: _Dims | None, right: _Dims | None) -> bool:
    """Whether ORT's CUDA MatMul may need pointer arrays (no single or strided batched GEMM)."""
    if right is None:
        return True
    if len(right) == 1:
        return left is None or len(left) >= 2  # a vector: ORT pads it to a batch of its own
    if len(right) == 2:
        return False  # the left operand's batch folds into one GEMM, or strides over it
    if left is None or len(left) != len(right):
        return True
    return any(a is None or a != b for a, b in zip(left[:-2], right[:-2]))


def _known_dims(model: onnx.ModelProto, inferred: bool) -> dict[str, _Dims]:
    """Each tensor's dims (a size, a symbol, or None) that the model states, or that ONNX shape
    inference finds when ``inferred`` (given large weights as shapes only, small ones whole:
    a Reshape's target shape is one)."""
    graph = model.graph
    if inferred:
        small = [t for t in graph.initializer if math.prod(t.dims) <= _SMALL]
        weights = [onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                   for t in graph.initializer if math.prod(t.dims) > _SMALL]
        light = onnx.helper.make_model(
            onnx.helper.make_graph(graph.node, graph.name, [*graph.input, *weights], graph.output,
                                   small, value_info=graph.value_info),
            opset_imports=model.opset_import, ir_version=model.ir_version)
        try:
            graph = onnx.shape_inference.infer_shapes(light).graph
        except (onnx.shape_inference.InferenceError, RuntimeError, ValueError):
            graph = model.graph  # the model's own infos stay (unknown operands: staging)
    found: dict[str, _Dims] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        shape = tensor_info_from_value(value).shape
        if shape is not None:
            found[value.name] = list(shape)
    found.update((t.name, list(t.dims)) for t in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            found.update((o, list(a.t.dims)) for o in node.output for a in node.attribute
                         if a.name == "value")
    return found


_SMALL = 4096  # initializers up to this many elements go to shape inference with their values


@functools.cache
def _concat_staged() -> bool:
    """Whether this onnxruntime's CUDA Concat may stage its arguments in pinned host memory
    (inputs of different sizes). 1.31's passes them by value; earlier ones were not checked."""
    try:
        from importlib.metadata import version

        installed = version("onnxruntime-gpu")
    except Exception:  # noqa: BLE001 - not installed, or no metadata: assume the worst
        return True
    parts = [int(p) for p in installed.split(".")[:2] if p.isdigit()]
    return parts < [1, 31]


def graph_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` for a graph session: the known dims it reads through ``Shape`` as constants
    (``static_dims``), and each Gemm ``A @ B (+ C)`` with no scaling and ``A`` not transposed as
    MatMul (and Add); ``model`` itself when there is nothing to change."""
    model = fold_static_dims(model)
    if not any(_plain_gemm(n) for n in model.graph.node):
        return model
    result = onnx.ModelProto()
    result.CopyFrom(model)
    nodes: list[onnx.NodeProto] = []
    for node in result.graph.node:
        if not _plain_gemm(node):
            nodes.append(node)
            continue
        right = node.input[1]
        if any(a.name == "transB" and a.i for a in node.attribute):
            right = f"{node.output[0]}__gemm_b"
            nodes.append(onnx.helper.make_node("Transpose", [node.input[1]], [right],
                                               name=right))  # folded by ORT for a constant B
        has_bias = len(node.input) > 2 and bool(node.input[2])
        product = f"{node.output[0]}__gemm_ab" if has_bias else node.output[0]
        nodes.append(onnx.helper.make_node("MatMul", [node.input[0], right], [product],
                                           name=f"{node.output[0]}__gemm_ab"))
        if has_bias:
            nodes.append(onnx.helper.make_node("Add", [product, node.input[2]], [node.output[0]],
                                               name=f"{node.output[0]}__gemm_c"))
    del result.graph.node[:]
    result.graph.node.extend(nodes)
    return result


def _plain_gemm(node: onnx.NodeProto) -> bool:
    if node.op_type != "Gemm" or node.domain not in ("", "ai.onnx"):
        return False
    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if values.get("alpha", 1.0) != 1.0 or values.get("transA", 0):
        return False
    return not (len(node.input) > 2 and node.input[2] and values.get("beta", 1.0) != 1.0)
