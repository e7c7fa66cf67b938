"""Dims a model reads with ``Shape`` that are known before it runs, written in as constants.

A model exported with a dynamic batch reads its fixed sizes (a feature map's height and width)
through ``Shape -> Gather`` or ``Shape -> Slice``; ONNX Runtime folds neither while one dim of the
tensor is unknown, so what is computed from them (anchor grids, say) reaches the device from the
host on every run, which a CUDA graph cannot hold. With the fixed dims as constants, ORT folds
the rest when the session is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from hybridtrt.core.graph import tensor_info_from_value
from hybridtrt.core.references import tensor_values

__all__ = ["fold_static_dims"]

_Dims = Sequence[int | str | None]
_ROUNDS = 8  # each round lets shape inference see what the last one folded
_LARGEST = 1 << 30  # bytes: bigger models are left as they are (inference copies the model)
_SMALLEST = 1 << 16  # elements an input to fold may have (shape values, small grids)
_LARGEST_FOLDED = 1 << 20  # elements a folded value may have (an anchor grid)
# Cheap ops of shape computations, evaluated when every input is a constant.
_FOLDED = frozenset({"Add", "Cast", "Concat", "Div", "Equal", "Expand", "Gather", "Mul", "Shape",
                     "Range", "Reshape", "Slice", "Squeeze", "Sub", "Transpose", "Unsqueeze",
                     "Where", "ConstantOfShape"})


def fold_static_dims(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with each ``Gather``/``Slice`` of a ``Shape`` that selects only known dims, and
    each small shape computation over constants, replaced by a constant, until nothing more
    folds; ``model`` itself when nothing does."""
    if model.ByteSize() > _LARGEST or not any(n.op_type == "Shape" for n in model.graph.node):
        return model
    result = model
    for _ in range(_ROUNDS):
        folded = _fold_round(result)
        if folded is None:
            break
        result = folded
    return result


def _fold_round(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """One round: the known dims (shape inference), then what is computed from constants."""
    shapes = [n for n in model.graph.node if n.op_type == "Shape" and n.domain in ("", "ai.onnx")]
    dims = _shape_dims(model, shapes)
    constants = _constant_values(model)
    folded: dict[int, np.ndarray] = {}
    for position, node in enumerate(model.graph.node):
        value = None
        if node.op_type in ("Gather", "Slice") and node.input and node.input[0] in dims:
            value = _selected(node, dims[node.input[0]], constants)
        elif node.op_type in _FOLDED and node.input and all(
                not i or i in constants for i in node.input):
            value = _evaluated(node, constants)
        if value is not None:
            folded[position] = value
            constants[node.output[0]] = value
    if not folded:
        return None
    result = onnx.ModelProto()
    result.CopyFrom(model)
    nodes = list(result.graph.node)
    for position, value in folded.items():
        old = nodes[position]
        nodes[position] = onnx.helper.make_node(
            "Constant", [], [old.output[0]], name=f"{old.name or old.output[0]}__static",
            value=numpy_helper.from_array(value, f"{old.output[0]}__static"))
    del result.graph.node[:]
    result.graph.node.extend(nodes)
    return result


def _evaluated(node: onnx.NodeProto, constants: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """``node``'s one output over its constant inputs (onnx's reference evaluator), when small."""
    if len(node.output) != 1 or any(constants[i].size > _SMALLEST for i in node.input if i):
        return None
    from onnx.reference import ReferenceEvaluator

    feeds = {i: constants[i] for i in node.input if i}
    inputs = [onnx.helper.make_tensor_value_info(i, onnx.helper.np_dtype_to_tensor_dtype(
        constants[i].dtype), None) for i in feeds]
    graph = onnx.helper.make_graph([node], "fold", inputs,
                                   [onnx.helper.make_empty_tensor_value_info(node.output[0])])
    probe = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    try:
        (value,) = ReferenceEvaluator(probe).run(None, feeds)
    except Exception:  # noqa: BLE001 - the evaluator raises many error types; then leave it
        return None
    value = np.asarray(value)
    return value if value.size <= _LARGEST_FOLDED else None


def _shape_dims(model: onnx.ModelProto, shapes: Sequence[onnx.NodeProto]) -> dict[str, _Dims]:
    """``{Shape output: the dims it holds}`` (start/end applied), from shape inference."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except (onnx.shape_inference.InferenceError, ValueError):  # (a model over 2 GiB, say)
        return {}
    graph = inferred.graph
    infos = {v.name: tensor_info_from_value(v) for v in (*graph.input, *graph.value_info)}
    infos.update({t.name: None for t in graph.initializer})  # constant: ORT folds those itself
    found: dict[str, _Dims] = {}
    for node in shapes:
        info = infos.get(node.input[0])
        if info is None or info.shape is None:
            continue
        attrs = {a.name: a.i for a in node.attribute}
        rank = len(info.shape)
        start, end = attrs.get("start", 0), attrs.get("end", rank)
        found[node.output[0]] = list(info.shape)[slice(start, end)]
    return found


def _constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {t.name: tensor_values(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _selected(node: onnx.NodeProto, dims: _Dims,
              constants: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """The dims ``node`` (a Gather or Slice of a Shape) picks, when all are known."""
    if any(name and name not in constants for name in node.input[1:]):
        return None
    picked = np.asarray(dims, dtype=object)
    try:
        if node.op_type == "Gather":
            picked = picked[constants[node.input[1]]]
        else:
            starts, ends = (int(constants[n].reshape(-1)[0]) for n in node.input[1:3])
            steps = int(constants[node.input[4]].reshape(-1)[0]) if len(node.input) > 4 \
                and node.input[4] else 1
            picked = picked[starts:ends:steps]
    except (IndexError, KeyError, ValueError):
        return None
    flat = np.asarray(picked, dtype=object).reshape(-1)
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in flat):
        return None
    return np.asarray(np.asarray(picked, dtype=object).tolist(), dtype=np.int64)
