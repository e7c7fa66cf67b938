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


def cluster_facts(
    index: GraphIndex, graph: DependencyGraph, supported: Sequence[bool], registry: Registry,
    known: frozenset[str] = frozenset(), ranged: frozenset[str] = frozenset(),
) -> filters.ClusterFacts:
    """The filters' view of ``index``: the registry's shape and value-shaped inputs per node, and
    the model inputs (and overridable initializers) whose values are unknown unless ``known``.
    ``ranged`` tensors have a shape range recorded on real inputs (``shape_range_info``), which
    the engines' profiles take: their shapes count as known."""

    def opset_of(proto: onnx.NodeProto) -> tuple[str, int]:
        domain = "" if proto.domain == "ai.onnx" else proto.domain
        return domain, index.opsets.get(domain, 1)

    def slots(node: int, wanted: Sequence[int]) -> list[int]:
        """Input slots as positions in ``index.node_inputs`` (which leaves out empty names)."""
        names = index.nodes[node].input
        return [sum(1 for n in names[:s] if n) for s in wanted if s < len(names) and names[s]]

    rules: dict[tuple[str, str], OpRule | None] = {}  # by op: one rule per op in a model

    def shape_inputs(node: int) -> Sequence[int]:
        proto = index.nodes[node]
        op = (proto.op_type, proto.domain)
        if op not in rules:
            rules[op] = registry.find(proto.op_type, *opset_of(proto))
        found = rules[op]
        return slots(node, found.shape_inputs) if found is not None else ()

    shaping: dict[tuple[str, str], tuple[int, ...]] = {}  # by op, as ``rules``

    def value_shaped(node: int) -> Sequence[str]:
        proto = index.nodes[node]
        op = (proto.op_type, proto.domain)
        wanted = shaping.get(op)
        if wanted is None:
            wanted = shaping[op] = registry.value_shaped_inputs(proto.op_type, *opset_of(proto))
        if not wanted and not proto.attribute:
            return ()
        reads = index.node_inputs[node]
        found = [reads[k] for k in slots(node, wanted)]
        if any(a.type in _BODIES for a in proto.attribute):
            # What a body does with the outer values it reads is not known here: any of them
            # may set a shape (an If branch may Reshape by it).
            found += reads[sum(1 for n in proto.input if n):]
        return found

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
        shape_inputs=shape_inputs,
        supported=supported,
        position=index.position,
        value_shaped=value_shaped,
        unknown_values=frozenset(n for n in (*index.graph_inputs, *index.overridable)
                                 if n not in known),
        static_shapes=static | ranged,
        ranked=ranked | ranged,
    )
