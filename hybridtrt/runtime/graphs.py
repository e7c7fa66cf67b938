"""Which GPU segments may be captured as CUDA graphs (``Config.enable_cuda_graph``).

ONNX Runtime replays a captured graph with the device addresses it recorded, and capture fails
when a run copies between host and device (a shape input computed on the GPU that a kernel
reads on the host, a constant copied into an output). So a segment is graphed only when:

* every node is an op whose CUDA kernel reads no host memory at run time, except inputs listed
  in ``_HOST_INPUTS`` that are constants of the segment (ORT keeps those on the host);
* no node has a subgraph, and no output is a constant or a segment input passed through.

Gemm is left out: with a row-vector bias, ORT's CUDA Gemm reads a cached buffer of ones that
it reallocates when a larger batch comes, which a graph captured before would still point at
(``DISABLED_FUSIONS`` keeps ORT from making such a Gemm out of MatMul and Add). ORT captures
in CUDA's global mode, so other threads' CUDA work during a capture fails: the device runs
graph sessions under one lock; other CUDA users in the process are the caller's to keep apart.

ORT itself refuses the rest at session creation (a node left on the CPU provider); such a
segment then runs without a graph. Bound runs (``bound``) keep the addresses fixed; a run whose
inputs are not all in buffers of the predictor's own is not replayed from a graph.
"""

from __future__ import annotations

import onnx

__all__ = ["DISABLED_FUSIONS", "GRAPH_OPS", "graph_safe"]

DISABLED_FUSIONS = ["MatMulAddFusion"]  # for graph sessions: no Gemm of ORT's making

GRAPH_OPS = frozenset({
    "Abs", "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "ConstantOfShape", "Conv",
    "ConvTranspose", "Div",
    "Dropout", "Elu", "Erf", "Exp", "Flatten", "GlobalAveragePool", "GlobalMaxPool",
    "HardSigmoid", "HardSwish", "Identity", "LayerNormalization", "LeakyRelu", "Log",
    "LogSoftmax", "MatMul", "MaxPool", "Mul", "Neg", "Pow", "PRelu", "Reciprocal", "ReduceMax",
    "ReduceMean", "ReduceSum", "Relu", "Reshape", "Selu", "Sigmoid", "Softmax", "Softplus",
    "Sqrt", "Squeeze", "Sub", "Sum", "Tanh", "Transpose", "Unsqueeze",
})

# Inputs that ORT's CUDA kernels read on the host: safe only when they are constants.
_HOST_INPUTS = {
    "ConstantOfShape": (0,), "Reshape": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Clip": (1, 2),
    "Dropout": (1, 2),
    "ReduceMax": (1,), "ReduceMean": (1,), "ReduceSum": (1,),
}


def graph_safe(model: onnx.ModelProto) -> bool:
    """Whether a segment's model may be captured as a CUDA graph (see the module's notes)."""
    graph = model.graph
    constants = {t.name for t in graph.initializer}
    constants.update(o for n in graph.node if n.op_type == "Constant" for o in n.output)
    passthrough = constants | {i.name for i in graph.input}
    if any(o.name in passthrough for o in graph.output):
        return False
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            continue
        if node.domain not in ("", "ai.onnx") or node.op_type not in GRAPH_OPS:
            return False
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for a in node.attribute):
            return False
        host = _HOST_INPUTS.get(node.op_type, ())
        if any(i < len(node.input) and node.input[i] and node.input[i] not in constants
               for i in host):
            return False
    return True
