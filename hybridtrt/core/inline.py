"""The inverse of the rewrite: put engines' subgraph nodes back in place of combine/engine/split."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import onnx

from hybridtrt.core.graph import rename_reads
from hybridtrt.errors import FormatError
from hybridtrt.core.format import COMBINE, DOMAIN, ENGINE, SPLIT, EngineRecord

__all__ = ["inline_engines"]


def inline_engines(
    model: onnx.ModelProto, select: Callable[[EngineRecord], bool] = lambda record: True,
    graph_of: Callable[[EngineRecord], onnx.GraphProto] = lambda record: record.subgraph,
) -> onnx.ModelProto:
    """A copy of a hybrid model with the selected engines replaced by their ONNX nodes.

    With every engine inlined the result is a plain ONNX model equivalent to the original one
    (ONNX Runtime can run it); the ``hybridtrt`` opset is dropped when no engine is left.

    Args:
        model: A hybrid model.
        select: Which engines to inline (default: all).
        graph_of: The graph to inline for an engine (default: its subgraph as recorded).

    Raises:
        FormatError: An engine node is not wrapped by its combine/split pair.
    """
    graph = model.graph
    defined = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output}
    defined |= {v.name for v in graph.input}
    inlined: set[str] = set()  # outputs of the inlined nodes
    records = {
        n.output[0]: EngineRecord.from_node(n)
        for n in graph.node if n.domain == DOMAIN and n.op_type == ENGINE
    }
    chosen = {packed for packed, record in records.items() if select(record)}
    wrappers = {n.input[0] for n in graph.node
                if n.domain == DOMAIN and n.op_type == ENGINE and n.output[0] in chosen}
    splits = {n.input[0]: n for n in graph.node if n.domain == DOMAIN and n.op_type == SPLIT}
    nodes: list[onnx.NodeProto] = []
    weights = _Weights(list(graph.initializer), {t.name: t for t in graph.initializer}, defined)
    for node in graph.node:
        if node.domain != DOMAIN:
            if not (node.output and all(o in inlined for o in node.output if o)):
                nodes.append(node)  # else: a shape value the engine shared, now inlined
        elif node.op_type == ENGINE and node.output[0] in chosen:
            record = records[node.output[0]]
            split = splits.get(node.output[0])
            if split is None or list(split.output) != record.output_names:
                raise FormatError(f"engine '{record.name}' is not followed by its split node")
            subgraph = graph_of(record)
            nodes.extend(_renamed(subgraph.node, weights.take(record.name, subgraph)))
            inlined.update(o for n in subgraph.node for o in n.output if o)
        elif not (node.op_type in (COMBINE, SPLIT) and _packed(node) in chosen | wrappers):
            nodes.append(node)
    return _rebuilt(model, nodes, weights.initializers)


class _Weights:
    """The initializers of the inlined model, and every name taken so far."""

    def __init__(self, initializers: list[onnx.TensorProto], outside: dict[str, onnx.TensorProto],
                 defined: set[str]) -> None:
        self.initializers, self.outside, self.defined = initializers, outside, defined

    def take(self, engine: str, subgraph: onnx.GraphProto) -> dict[str, str]:
        """Add the engine's initializers; the renames its nodes need (weights whose name means
        something else outside, such as a value the engine folded or retyped, get their own)."""
        rename: dict[str, str] = {}
        for tensor in subgraph.initializer:
            if tensor.name not in self.defined:
                self.initializers.append(tensor)
                self.defined.add(tensor.name)
            elif self.outside.get(tensor.name) != tensor:
                rename[tensor.name] = _free(f"{engine}/{tensor.name}", self.defined)
                renamed = onnx.TensorProto()
                renamed.CopyFrom(tensor)
                renamed.name = rename[tensor.name]
                self.initializers.append(renamed)
                self.defined.add(renamed.name)
        return rename


def _rebuilt(model: onnx.ModelProto, nodes: Sequence[onnx.NodeProto],
             initializers: Sequence[onnx.TensorProto]) -> onnx.ModelProto:
    """A copy of ``model`` with these nodes and initializers (and no ``hybridtrt`` opset when no
    node of that domain is left)."""
    result = _without_nodes(model)  # the weights are copied once, below
    result.graph.node.extend(nodes)
    result.graph.initializer.extend(initializers)
    if not any(n.domain == DOMAIN for n in nodes):
        kept = [o for o in result.opset_import if o.domain != DOMAIN]
        del result.opset_import[:]
        result.opset_import.extend(kept)
    return result


def _without_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` without its graph's nodes and initializers (never copied)."""
    result = onnx.ModelProto()
    for field, value in model.ListFields():
        if field.name == "graph":
            continue
        if field.is_repeated:
            getattr(result, field.name).extend(value)
        elif field.message_type is not None:
            getattr(result, field.name).CopyFrom(value)
        else:
            setattr(result, field.name, value)
    for field, value in model.graph.ListFields():
        if field.name in ("node", "initializer"):
            continue
        if field.is_repeated:
            getattr(result.graph, field.name).extend(value)
        else:
            setattr(result.graph, field.name, value)
    return result


def _packed(node: onnx.NodeProto) -> str:
    """The packed value a combine writes or a split reads."""
    return node.output[0] if node.op_type == COMBINE else node.input[0]


def _free(name: str, taken: set[str]) -> str:
    candidate, k = name, 0
    while candidate in taken:
        k += 1
        candidate = f"{name}_{k}"
    return candidate


def _renamed(nodes: Sequence[onnx.NodeProto], rename: Mapping[str, str]) -> list[onnx.NodeProto]:
    """Copies of ``nodes`` reading the renamed weights (bodies of If/Loop/Scan included)."""
    if not rename:
        return list(nodes)
    result = []
    for node in nodes:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        rename_reads(copy, rename)
        result.append(copy)
    return result
