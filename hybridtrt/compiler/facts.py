"""Stage 3a: what the cluster filters know of a model, asked once of its index and the registry."""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from hybridtrt.compiler import filters
from hybridtrt.compiler.shapes import match_inputs
from hybridtrt.config import Input
from hybridtrt.converters.registry import OpRule, Registry
from hybridtrt.core.graph import GraphIndex
from hybridtrt.core.partition import DependencyGraph
from hybridtrt.errors import HybridTRTError

__all__ = ["cluster_facts", "known_values"]

_BODIES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


def known_values(index: GraphIndex, inputs: Sequence[Input]) -> frozenset[str]:
    """Model inputs whose values the Inputs give (warm-up data or a value range, in every set)."""
    try:
        chosen = match_inputs(index, inputs)
    except HybridTRTError:
        return frozenset()  # plan_runs reports the problem when the runs are planned
    return frozenset(name for name, sets in chosen.items()
                     if all(i.samples or i.input_range is not None for i in sets))


class _OpInputs:
    """The registry's shape and value-shaped input slots of each node, looked up once per op."""

    def __init__(self, index: GraphIndex, registry: Registry) -> None:
        self.index, self.registry = index, registry
        self.rules: dict[tuple[str, str], OpRule | None] = {}  # one rule per op in a model
        self.shaping: dict[tuple[str, str], tuple[int, ...]] = {}

    def _opset_of(self, proto: onnx.NodeProto) -> tuple[str, int]:
        domain = "" if proto.domain == "ai.onnx" else proto.domain
        return domain, self.index.opsets.get(domain, 1)

    def _slots(self, node: int, wanted: Sequence[int]) -> list[int]:
        """Input slots as positions in ``index.node_inputs`` (which leaves out empty names)."""
        names = self.index.nodes[node].input
        return [sum(1 for n in names[:s] if n) for s in wanted if s < len(names) and names[s]]

    def shape_inputs(self, node: int) -> Sequence[int]:
        proto = self.index.nodes[node]
        op = (proto.op_type, proto.domain)
        if op not in self.rules:
            self.rules[op] = self.registry.find(proto.op_type, *self._opset_of(proto))
        found = self.rules[op]
        return self._slots(node, found.shape_inputs) if found is not None else ()

    def value_shaped(self, node: int) -> Sequence[str]:
        proto = self.index.nodes[node]
        op = (proto.op_type, proto.domain)
        wanted = self.shaping.get(op)
        if wanted is None:
            wanted = self.shaping[op] = self.registry.value_shaped_inputs(
                proto.op_type, *self._opset_of(proto))
        if not wanted and not proto.attribute:
            return ()
        reads = self.index.node_inputs[node]
        found = [reads[k] for k in self._slots(node, wanted)]
        if any(a.type in _BODIES for a in proto.attribute):
            # What a body does with the outer values it reads is not known here: any of them
            # may set a shape (an If branch may Reshape by it).
            found += reads[sum(1 for n in proto.input if n):]
        return found


def cluster_facts(
    index: GraphIndex, graph: DependencyGraph, supported: Sequence[bool], registry: Registry,
    known: frozenset[str] = frozenset(), ranged: frozenset[str] = frozenset(),
) -> filters.ClusterFacts:
    """The filters' view of ``index``: the registry's shape and value-shaped inputs per node, and
    the model inputs (and overridable initializers) whose values are unknown unless ``known``.
    ``ranged`` tensors have a shape range recorded on real inputs (``shape_range_info``), which
    the engines' profiles take: their shapes count as known."""
    ops = _OpInputs(index, registry)
    static, ranked = index.shape_kinds([*index.producer, *index.graph_inputs])
    return filters.ClusterFacts(
        graph=graph,
        op_types=index.op_types,
        inputs=index.node_inputs,
        outputs=index.node_outputs,
        producer=index.producer,
        consumers=index.consumers,
        graph_outputs=frozenset(index.graph_outputs),
        constants=(frozenset(index.initializers) - index.overridable)
        | frozenset(index.constant_nodes),
        shape_inputs=ops.shape_inputs,
        supported=supported,
        position=index.position,
        value_shaped=ops.value_shaped,
        unknown_values=frozenset(n for n in (*index.graph_inputs, *index.overridable)
                                 if n not in known),
        static_shapes=static | ranged,
        ranked=ranked | ranged,
    )
