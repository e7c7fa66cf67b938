"""TensorRT's parser verdicts, remembered per cluster structure: clusters that differ only in
their names (the repeated blocks of a long model) are parsed once."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import onnx

from hybridtrt.core.external import tensor_bytes
from hybridtrt.trt.api import ParserVerdict

__all__ = ["VerdictMemo", "structure_key"]

_LOG = logging.getLogger("hybridtrt.tensorrt")
_SMALL_WEIGHTS = 1 << 20  # bytes; above, a repeat of the same weights is unlikely, the key dear


def structure_key(model: onnx.ModelProto) -> str | None:
    """SHA-256 of ``model`` with every tensor of its graph renamed by order of first
    appearance and its node and graph names cleared; equal keys mean models equal but for
    names. None where no key is made: a node carries a body (which reads outer names by name),
    or the weights are over 1 MiB (their copy and hash would cost more than a repeat saves)."""
    graph = model.graph
    if sum(tensor_bytes(t) for t in graph.initializer) > _SMALL_WEIGHTS:
        return None
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           or a.HasField("g") or a.graphs for n in graph.node for a in n.attribute):
        return None
    canonical = onnx.ModelProto()
    canonical.CopyFrom(model)
    _rename(canonical.graph)
    return hashlib.sha256(canonical.SerializeToString(deterministic=True)).hexdigest()


def _rename(graph: onnx.GraphProto) -> None:
    names: dict[str, str] = {"": ""}  # an omitted optional input stays omitted

    def canon(name: str) -> str:
        found = names.get(name)
        if found is None:
            found = names[name] = f"t{len(names)}"
        return found

    graph.name = ""
    for value in graph.input:
        value.name = canon(value.name)
    for tensor in graph.initializer:
        tensor.name = canon(tensor.name)
    for sparse in graph.sparse_initializer:
        sparse.values.name = canon(sparse.values.name)
        sparse.indices.name = canon(sparse.indices.name)
    for node in graph.node:
        if node.name:
            node.name = ""
        node.input[:] = [names[n] if n in names else canon(n) for n in node.input]
        node.output[:] = [canon(n) for n in node.output]  # each written once
    for group in (graph.output, graph.value_info):
        for value in group:
            value.name = canon(value.name)
    for note in graph.quantization_annotation:
        note.tensor_name = canon(note.tensor_name)


class VerdictMemo:
    """The verdicts of one conversion, by ``structure_key``.

    Only verdicts without reasons are taken again: a reason is TensorRT's text, which may name
    the tensors of the cluster it was given. While ``hybridtrt.tensorrt`` shows debug messages
    every cluster is parsed, so the parser's log covers each of them.
    """

    def __init__(self) -> None:
        self._verdicts: dict[str, ParserVerdict] = {}
        self.hits = 0

    def verdict(self, model: onnx.ModelProto,
                parse: Callable[[onnx.ModelProto], ParserVerdict]) -> ParserVerdict:
        """The verdict of ``model``: remembered, or ``parse(model)``."""
        if _LOG.isEnabledFor(logging.DEBUG):
            return parse(model)
        key = structure_key(model)
        found = self._verdicts.get(key) if key is not None else None
        if found is not None:
            self.hits += 1
            return found
        verdict = parse(model)
        if key is not None and not verdict.reasons:
            self._verdicts[key] = verdict
        return verdict
