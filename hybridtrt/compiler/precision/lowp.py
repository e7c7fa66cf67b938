"""FP16 / BF16 clusters: low-precision graphs with FP32 kept at the boundary and where asked.

TensorRT 11 builds strongly typed networks only, so precision is written into each cluster's
ONNX graph before the build: ONNX Runtime's float16 converter (``onnxruntime.transformers.
float16``) turns the float tensors to FP16 and inserts casts around the nodes kept in FP32 and
at the graph's inputs and outputs. BF16 is the same graph retyped, its weights rounded from the
FP32 originals. ``as_fp32`` lets ONNX Runtime run such a graph in FP32 with every 16-bit value
rounded to its type, so the transformation is testable anywhere.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from hybridtrt.core.graph import GraphIndex, rename_reads
from hybridtrt.core.references import tensor_values
from hybridtrt.errors import ConfigError

__all__ = ["FP16_MAX", "KeptNode", "Lowered", "as_fp32", "big_weights",
           "constants_as_initializers", "low_precision_types", "lower", "outputs_from_nodes",
           "prefix_new_names"]

_LOG = logging.getLogger("hybridtrt")

FP16_MAX = 65504.0
_LOW = {TensorProto.FLOAT16, TensorProto.BFLOAT16}


@dataclasses.dataclass(frozen=True)
class KeptNode:
    """A node of a low-precision cluster that stays in FP32, and why."""

    name: str
    op_type: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Lowered:
    """A cluster model in low precision.

    Attributes:
        model: The typed model; its inputs and outputs keep their FP32 types.
        kept: Nodes left in FP32 with the reason, in graph order.
        clamped: Weights whose values were clamped to FP16's range.
        low: The nodes left in low precision, in topological order.
    """

    model: onnx.ModelProto
    kept: tuple[KeptNode, ...]
    clamped: tuple[str, ...]
    low: tuple[str, ...] = ()


def constants_as_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with Constant nodes' tensors as initializers.

    The converters treat weights right only as initializers: ONNX Runtime's float16 converter
    casts a Constant's output to FP16 even when its consumers stay FP32 (overflowing weights
    beyond 65504), and its quantizer quantizes only initializer weights per channel.
    """
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    kept = []
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and value is not None and node.domain in ("", "ai.onnx"):
            tensor = onnx.TensorProto()
            tensor.CopyFrom(value)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return result


def big_weights(model: onnx.ModelProto, limit: float = FP16_MAX) -> dict[str, float]:
    """Float weights (initializers and Constant values) whose magnitude exceeds ``limit``."""
    found = {}
    tensors = [(t.name, t) for t in model.graph.initializer]
    tensors += [(n.output[0], a.t) for n in model.graph.node if n.op_type == "Constant"
                for a in n.attribute if a.name == "value"]
    for name, tensor in tensors:
        if tensor.data_type == TensorProto.FLOAT:
            values = tensor_values(tensor)
            peak = float(np.abs(values).max()) if values.size else 0.0
            if peak > limit:
                found[name] = peak
    return found


def lower(
    model: onnx.ModelProto, dtype: int, keep: Mapping[str, str], prefix: str, clamp: bool = False
) -> Lowered:
    """``model`` with its float computation in ``dtype`` (FP16 or BF16).

    Args:
        model: A cluster model with named or unnamed nodes (unnamed ones get ``prefix`` names).
        dtype: ``TensorProto.FLOAT16`` or ``TensorProto.BFLOAT16``.
        keep: Node name -> reason, for the nodes to leave in FP32.
        prefix: Prefix of every node and tensor name the conversion adds (keeps names unique
            when engines are inlined back into one model).
        clamp: For FP16, clamp weights beyond 65504 (True) or keep their consumers in FP32.
    """
    try:
        from onnxruntime.transformers import float16
    except ImportError as exc:
        raise ConfigError("FP16/BF16 precision needs ONNX Runtime's float16 converter: "
                          "pip install 'hybridtrt[cpu]' (or onnxruntime-gpu)") from exc
    source = outputs_from_nodes(constants_as_initializers(model), prefix)
    for k, node in enumerate(source.graph.node):
        if not node.name:
            node.name = f"{prefix}node{k}"
    keep = dict(keep)
    clamped: tuple[str, ...] = ()
    if dtype == TensorProto.FLOAT16:
        keep, clamped = _guard_weights(source, keep, clamp)
    blocked_ops = set(float16.DEFAULT_OP_BLOCK_LIST)
    converted = float16.convert_float_to_float16(
        source, keep_io_types=True, op_block_list=sorted(blocked_ops),
        node_block_list=sorted(keep), max_finite_val=FP16_MAX,
    )
    _drop_repeated_casts(converted.graph)
    _drop_round_trips(converted.graph, source.graph)
    if dtype == TensorProto.BFLOAT16:
        _retype_bf16(converted, source)
    elif dtype != TensorProto.FLOAT16:
        raise ConfigError(f"lower() makes FP16 or BF16 graphs, not {TensorProto.DataType.Name(dtype)}")
    prefix_new_names(converted.graph, source.graph, prefix)
    _rename_retyped(converted.graph, source.graph, prefix)
    kept = []
    floats = _float_names(source)
    for node in source.graph.node:
        if node.name in keep:
            kept.append(KeptNode(node.name, node.op_type, keep[node.name]))
        elif node.op_type in blocked_ops and any(n in floats for n in (*node.input, *node.output)):
            kept.append(KeptNode(node.name, node.op_type,
                                 "ONNX Runtime's float16 converter keeps this op in FP32"))
    fp32 = {k.name for k in kept}
    nodes = source.graph.node
    low = tuple(nodes[k].name for k in GraphIndex(source).topo_order if nodes[k].name not in fp32)
    return Lowered(converted, tuple(kept), clamped, low)


def _drop_repeated_casts(graph: onnx.GraphProto) -> None:
    """Work around ONNX Runtime's float16 converter: a 16-bit tensor read by two nodes kept in
    FP32 gets two identical Casts writing the same name (two producers: an invalid graph)."""
    seen: set[str] = set()
    nodes = []
    for node in graph.node:
        if node.op_type == "Cast" and len(node.output) == 1 and node.output[0] in seen:
            continue  # the same cast of the same tensor, made again
        seen.update(node.output)
        nodes.append(node)
    if len(nodes) != len(graph.node):
        del graph.node[:]
        graph.node.extend(nodes)
        values = {v.name: v for v in graph.value_info}
        del graph.value_info[:]
        graph.value_info.extend(values.values())


def _drop_round_trips(graph: onnx.GraphProto, before: onnx.GraphProto) -> None:
    """Let FP32 nodes hand FP32 values to each other: ONNX Runtime's float16 converter casts
    every output of a node kept in FP32 to FP16 and back to FP32 for each consumer, also for a
    consumer kept in FP32, so a value kept FP32 for its range still overflows in between."""
    original = {n.name for n in before.node}
    made = {o: n for n in graph.node for o in n.output}
    outputs = {o.name for o in graph.output}
    rename = {}
    direct = False
    for node in graph.node:
        first = made.get(node.input[0]) if node.op_type == "Cast" and node.input else None
        if (node.name in original or first is None or first.op_type != "Cast"
                or first.name in original or _cast_to(node) != TensorProto.FLOAT
                or _cast_to(first) not in _LOW):
            continue
        if node.output[0] in outputs:
            node.input[0] = first.input[0]  # a graph output: FP32 cast to FP32, no rounding
            direct = True
        else:
            rename[node.output[0]] = first.input[0]
    if not rename and not direct:
        return
    nodes = [n for n in graph.node if not (n.output and n.output[0] in rename)]
    for node in nodes:
        rename_reads(node, rename)
    read = {i for n in nodes for i in n.input} | outputs
    nodes = [n for n in nodes if n.op_type != "Cast" or n.name in original or
             any(o in read for o in n.output)]
    del graph.node[:]
    graph.node.extend(nodes)
    live = {n for node in nodes for n in (*node.input, *node.output)}
    values = [v for v in graph.value_info if v.name in live]
    del graph.value_info[:]
    graph.value_info.extend(values)


def _cast_to(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "to"), 0)


def _guard_weights(
    model: onnx.ModelProto, keep: dict[str, str], clamp: bool
) -> tuple[dict[str, str], tuple[str, ...]]:
    big = big_weights(model)
    if not big:
        return keep, ()
    if clamp:
        _LOG.warning("clamping weight(s) beyond FP16's range to +-65504: %s",
                     ", ".join(f"'{n}' (|max| {v:.3g})" for n, v in sorted(big.items())))
        return keep, tuple(sorted(big))
    for node in model.graph.node:
        hit = [n for n in (*node.input, *node.output) if n in big]
        if hit and node.name not in keep:
            keep[node.name] = (f"weight '{hit[0]}' reaches {big[hit[0]]:.3g}, beyond FP16's "
                               "range (65504)")
    return keep, ()


def _float_names(model: onnx.ModelProto) -> set[str]:
    floats = {v.name for v in (*model.graph.input, *model.graph.value_info, *model.graph.output)
              if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    return floats | {t.name for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}


def _float16_names(model: onnx.ModelProto) -> set[str]:
    """Tensors that are FP16 before any conversion (they stay FP16 in a BF16 graph)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    values = (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output)
    names = {v.name for v in values if v.type.tensor_type.elem_type == TensorProto.FLOAT16}
    return names | {t.name for t in model.graph.initializer if t.data_type == TensorProto.FLOAT16}


def _to_bf16(values: np.ndarray, name: str) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values, np.float32).astype(ml_dtypes.bfloat16), name)


def _retype_bf16(converted: onnx.ModelProto, source: onnx.ModelProto) -> None:
    """Turn the FP16 the converter wrote into BF16, weights rounded from their FP32 values."""
    originally_fp16 = _float16_names(source)
    fp32_weights = {t.name: t for t in source.graph.initializer}
    fp32_constants = {n.output[0]: a.t for n in source.graph.node if n.op_type == "Constant"
                      for a in n.attribute if a.name == "value"}
    graph = converted.graph
    for k, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT16 and tensor.name not in originally_fp16:
            original = fp32_weights.get(tensor.name, tensor)
            graph.initializer[k].CopyFrom(_to_bf16(tensor_values(original), tensor.name))
    for node in graph.node:
        new_output = not any(o in originally_fp16 for o in node.output)
        for attr in node.attribute:
            if attr.name == "to" and node.op_type == "Cast" and attr.i == TensorProto.FLOAT16 \
                    and new_output:
                attr.i = TensorProto.BFLOAT16
            elif attr.HasField("t") and attr.t.data_type == TensorProto.FLOAT16 and new_output:
                original = fp32_constants.get(node.output[0], attr.t)
                attr.t.CopyFrom(_to_bf16(tensor_values(original), attr.t.name))
    for value in (*graph.input, *graph.value_info, *graph.output):
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type == TensorProto.FLOAT16 and value.name not in originally_fp16:
            tensor_type.elem_type = TensorProto.BFLOAT16


def prefix_new_names(graph: onnx.GraphProto, before: onnx.GraphProto, prefix: str) -> None:
    """Prefix the names of the nodes, tensors and weights a conversion added to ``before``."""
    old_nodes = {n.name for n in before.node}
    old_values = {v.name for v in (*before.input, *before.output, *before.initializer)}
    old_values |= {n for node in before.node for n in (*node.input, *node.output)}
    rename = {}
    for node in graph.node:
        if node.name not in old_nodes:
            node.name = prefix + node.name
        rename.update({o: prefix + o for o in node.output if o and o not in old_values})
    for tensor in graph.initializer:
        if tensor.name not in old_values:
            rename[tensor.name] = prefix + tensor.name
            tensor.name = prefix + tensor.name
    for node in graph.node:
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
    for value in graph.value_info:
        value.name = rename.get(value.name, value.name)


def outputs_from_nodes(model: onnx.ModelProto, prefix: str) -> onnx.ModelProto:
    """Graph outputs that are weights (a constant, or one layer folding computed) come from an
    Identity (``model`` is changed): ONNX Runtime's float16 converter leaves a weight output
    dangling otherwise, and inlining needs engine outputs made by nodes."""
    weights = {t.name for t in model.graph.initializer}
    direct = [o.name for o in model.graph.output if o.name in weights]
    if not direct:
        return model
    for tensor in model.graph.initializer:
        if tensor.name in direct:
            tensor.name = f"{prefix}{tensor.name}_value"
    renamed = {name: f"{prefix}{name}_value" for name in direct}
    for node in model.graph.node:
        rename_reads(node, renamed)
    model.graph.node.extend(onnx.helper.make_node("Identity", [renamed[n]], [n], name=f"{prefix}{n}_out")
                            for n in direct)
    return model


def _rename_retyped(graph: onnx.GraphProto, before: onnx.GraphProto, prefix: str) -> None:
    """Give the weights the conversion retyped new names: the same name may stand for the
    FP32 original outside the engine (a weight or constant it shares), and inlining the engine
    back must not confuse the two."""
    types = {t.name: t.data_type for t in before.initializer}
    rename = {t.name: prefix + t.name for t in graph.initializer
              if t.name in types and t.data_type != types[t.name]}
    if not rename:
        return
    for tensor in graph.initializer:
        tensor.name = rename.get(tensor.name, tensor.name)
    for value in graph.value_info:
        value.name = rename.get(value.name, value.name)
    for node in graph.node:
        rename_reads(node, rename)
