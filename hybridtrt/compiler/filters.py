"""Stage 3b: small pure filters over proposed clusters (size, shape-only clusters, shape tensors,
shapes set by unknown values)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

from hybridtrt.core.graph import SHAPE_SOURCES
from hybridtrt.core.partition import DependencyGraph, Partition, SearchBudget, reaches

__all__ = [
    "ClusterFacts",
    "compute_nodes",
    "drop_small",
    "drop_trivial",
    "drop_unused",
    "drop_value_shaped",
    "fix_shape_tensor_inputs",
    "keep_qdq_pairs",
    "settle",
    "split_without",
    "trim_shape_outputs",
    "value_shaped_tensors",
]

# Nodes that move or describe data without computing on it.
_NO_COMPUTE = frozenset({"Identity", "Constant", "Shape", "Size", "Reshape", "Squeeze",
                         "Unsqueeze", "Flatten"})


@dataclasses.dataclass(frozen=True)
class ClusterFacts:
    """What the filters need to know about the graph, without depending on onnx.

    Attributes:
        graph: Node dependencies.
        op_types: ``op_types[i]`` is the op type of node i.
        inputs: ``inputs[i]`` lists the tensors node i reads (explicit inputs first, in slot order).
        outputs: ``outputs[i]`` lists the tensors node i writes.
        producer: Tensor name -> producing node (absent for graph inputs and initializers).
        consumers: Tensor name -> nodes that read it.
        graph_outputs: Names of the model's outputs.
        constants: Names of initializers and Constant outputs.
        shape_inputs: ``shape_inputs(i)`` lists the input slots of node i read as shape tensors.
        supported: ``supported[i]`` is True when TensorRT can run node i.
        position: ``position[i]`` is node i's rank in a topological order.
        value_shaped: ``value_shaped(i)`` lists the tensors node i reads at inputs whose values
            set an output's shape (the registry's ``value_shaped_inputs``).
        unknown_values: Model inputs whose values convert does not know (no warm-up data).
        static_shapes: Tensors whose every dim shape inference knows.
        ranked: Tensors whose rank shape inference knows.
    """

    graph: DependencyGraph
    op_types: Sequence[str]
    inputs: Sequence[Sequence[str]]
    outputs: Sequence[Sequence[str]]
    producer: dict[str, int]
    consumers: dict[str, list[int]]
    graph_outputs: frozenset[str]
    constants: frozenset[str]
    shape_inputs: Callable[[int], Sequence[int]]
    supported: Sequence[bool]
    position: Sequence[int]
    value_shaped: Callable[[int], Sequence[str]] = lambda _: ()
    unknown_values: frozenset[str] = frozenset()
    static_shapes: frozenset[str] = frozenset()
    ranked: frozenset[str] = frozenset()

    @functools.cached_property
    def unknown_shapes(self) -> frozenset[str]:
        """``value_shaped_tensors(self)``, computed once."""
        return value_shaped_tensors(self)

    def leaves(self, node: int, members: set[int]) -> bool:
        """Whether every output of ``node`` is used only outside ``members`` (or is a graph output)."""
        for name in self.outputs[node]:
            if any(c in members for c in self.consumers.get(name, ())):
                return False
        return True


def compute_nodes(part: Partition, facts: ClusterFacts) -> int:
    """Nodes of a cluster that are not Constant nodes."""
    return sum(1 for n in part.nodes if facts.op_types[n] != "Constant")


def drop_small(parts: Sequence[Partition], min_size: int, facts: ClusterFacts) -> list[Partition]:
    """Keep clusters of at least ``min_size`` nodes (Constant nodes do not count)."""
    return [p for p in parts if compute_nodes(p, facts) >= min_size]


def drop_unused(parts: Sequence[Partition], facts: ClusterFacts) -> list[Partition]:
    """Drop clusters none of whose outputs is read outside them or is a model output."""
    return [p for p in parts if _used(p, facts)]


def _used(part: Partition, facts: ClusterFacts) -> bool:
    members = set(part.nodes)
    for node in part.nodes:
        for name in facts.outputs[node]:
            if name in facts.graph_outputs:
                return True
            if any(c not in members for c in facts.consumers.get(name, ())):
                return True
    return False


def drop_trivial(parts: Sequence[Partition], facts: ClusterFacts) -> list[Partition]:
    """Drop clusters made only of shape, identity and constant work: an engine gains nothing."""
    return [p for p in parts if not _trivial(p, facts)]


def _trivial(part: Partition, facts: ClusterFacts) -> bool:
    derived = set(facts.constants)
    for node in part.nodes:
        op = facts.op_types[node]
        shape_work = op in SHAPE_SOURCES or all(n in derived for n in facts.inputs[node])
        if shape_work:
            derived.update(facts.outputs[node])
        elif op not in _NO_COMPUTE:
            return False
    return True


def trim_shape_outputs(parts: Sequence[Partition], facts: ClusterFacts) -> list[Partition]:
    """Leave out cluster-final shape computations (Shape/Size and math on their results).

    An engine output computed only from shapes would be a host-side shape tensor; it is cheaper
    and simpler to compute it outside. Removing a node whose outputs all leave the cluster keeps
    the cluster convex.
    """
    trimmed = []
    for part in parts:
        members = set(part.nodes)
        derived = _shape_derived(part, facts)
        changed = True
        while changed:
            changed = False
            for node in reversed(part.nodes):
                if node in members and node in derived and facts.leaves(node, members):
                    members.discard(node)
                    changed = True
        if members:
            trimmed.extend(_components([n for n in part.nodes if n in members], facts.graph))
    return trimmed


def _shape_derived(part: Partition, facts: ClusterFacts) -> set[int]:
    tensors = set(facts.constants)
    nodes: set[int] = set()
    for node in part.nodes:
        ins = facts.inputs[node]
        if facts.op_types[node] in SHAPE_SOURCES or (ins and all(n in tensors for n in ins)):
            nodes.add(node)
            tensors.update(facts.outputs[node])
    return nodes


_SPLIT_REASONS = (
    "reads a shape tensor computed outside TensorRT",
    "its QuantizeLinear/DequantizeLinear partner runs outside TensorRT (a Q/DQ pair is never "
    "split)",
    "a tensor at its cluster's edge has a shape set by values of model inputs without warm-up "
    "data (Input(warmup_data=...) lets TensorRT take it)",
)


def settle(parts: Sequence[Partition], facts: ClusterFacts,
           pull: bool = True) -> tuple[list[Partition], dict[int, str]]:
    """The filters that split clusters, repeated until the last finds nothing to cut.

    A node one of them drops is never pulled back in, so the loop ends. The engine stage
    settles every piece it cuts the same way, with ``pull`` off (a piece only loses nodes,
    never takes in one TensorRT refused or another cluster holds), so a split by TensorRT never
    puts a shape tensor or a shape set by unknown values on a new edge.

    Returns:
        The clusters, and why each node left (the latest filter to drop it).
    """
    why: dict[int, str] = {}

    def pullable(node: int) -> bool:
        return pull and facts.supported[node] and node not in why

    splits: tuple[Callable[[list[Partition]], list[Partition]], ...] = (
        lambda p: fix_shape_tensor_inputs(p, facts, pullable),
        lambda p: keep_qdq_pairs(p, facts),
        lambda p: drop_value_shaped(p, facts),
    )
    current = list(parts)
    while True:
        for split, reason in zip(splits, _SPLIT_REASONS):
            before, current = current, split(current)
            kept = {n for p in current for n in p.nodes}
            why.update((n, reason) for p in before for n in p.nodes if n not in kept)
        if current == before:  # drop_value_shaped cut nothing: the other two have just run
            return current, why


def fix_shape_tensor_inputs(parts: Sequence[Partition], facts: ClusterFacts,
                            pullable: Callable[[int], bool] | None = None) -> list[Partition]:
    """Make sure no cluster reads a shape tensor computed outside it.

    TensorRT takes a shape tensor (Reshape's target shape, Slice's starts...) as an engine input
    only with host-side values fixed per profile. When a cluster reads one from outside, pull its
    producer into the cluster if it is ``pullable`` (default: TensorRT supports it), in no
    cluster, and no cycle results; otherwise leave the consuming node out of the cluster
    (splitting it where needed).
    """
    can_pull = pullable if pullable is not None else facts.supported.__getitem__
    groups: dict[int, set[int]] = {}
    owner: dict[int, int] = {}
    pending: list[int] = []
    counter = [0]
    budget = SearchBudget(_SEARCH_VISITS)

    def add_group(members: set[int]) -> None:
        key = counter[0]
        counter[0] += 1
        groups[key] = members
        owner.update((n, key) for n in members)
        pending.append(key)

    for part in parts:
        add_group(set(part.nodes))
    banned: set[int] = set()
    while pending:
        key = pending.pop()
        members = groups[key]
        bad = _external_shape_inputs(members, facts)
        if not bad:
            continue
        tensor, consumer = bad[0]
        producer = facts.producer.get(tensor)
        if (producer is not None and can_pull(producer) and producer not in banned
                and producer not in owner
                and _can_add(producer, members, facts, groups, owner, budget)):
            members.add(producer)
            owner[producer] = key
            pending.append(key)
            continue
        banned.add(consumer)
        del groups[key]
        for node in members:
            owner.pop(node, None)
        for piece in split_without(members, consumer, facts):
            add_group(set(piece.nodes))
    return sorted((Partition(_ordered(m, facts)) for m in groups.values()), key=lambda p: p.nodes[0])


def value_shaped_tensors(facts: ClusterFacts) -> frozenset[str]:
    """Tensors whose shape depends on values that convert does not know.

    Values are unknown for ``facts.unknown_values`` and everything computed from them, except
    Shape/Size of a tensor whose shape is known. An output's shape is unknown when a
    value-shaped input of its node reads an unknown value or any input has an unknown shape,
    unless shape inference knows every dim.
    """
    reads = [facts.value_shaped(node) for node in range(len(facts.op_types))]
    if not any(reads):  # no shape is set by values: none can be unknown
        return frozenset()
    values = set(facts.unknown_values)
    shapes: set[str] = set()
    for node in sorted(range(len(facts.op_types)), key=facts.position.__getitem__):
        ins = facts.inputs[node]
        shaped = any(n in shapes for n in ins)
        valued = shaped if facts.op_types[node] in SHAPE_SOURCES else any(n in values for n in ins)
        shaped = shaped or any(n in values for n in reads[node])
        for name in facts.outputs[node]:
            if valued:
                values.add(name)
            if shaped and name not in facts.static_shapes:
                shapes.add(name)
    return frozenset(shapes)


def drop_value_shaped(parts: Sequence[Partition], facts: ClusterFacts) -> list[Partition]:
    """Keep tensors whose shape depends on unknown values off the edges of clusters.

    An engine input needs a shape range recorded from warm-up runs, and random warm-up values
    would give ranges the real values break; so a member reading such a tensor from outside
    leaves its cluster. An engine output of unknown rank could not be recorded at all, so its
    producer leaves too. Inside a cluster such tensors are fine (TensorRT computes them).
    """
    unknown = facts.unknown_shapes
    if not unknown:
        return list(parts)
    current = [set(p.nodes) for p in parts]
    k = 0
    while k < len(current):
        members = current[k]
        bad = next((n for n in sorted(members, key=facts.position.__getitem__)
                    if _crosses_unknown(n, members, unknown, facts)), None)
        if bad is None:
            k += 1
            continue
        current[k:k + 1] = [set(p.nodes) for p in split_without(members, bad, facts)]
    return sorted((Partition(_ordered(m, facts)) for m in current), key=lambda p: p.nodes[0])


def _crosses_unknown(node: int, members: set[int], unknown: frozenset[str],
                     facts: ClusterFacts) -> bool:
    """Whether ``node`` reads an unknown-shaped tensor from outside ``members``, or writes one
    of unknown rank that leaves them."""
    for name in facts.inputs[node]:
        if name in unknown and facts.producer.get(name) not in members:
            return True
    for name in facts.outputs[node]:
        if name in unknown and name not in facts.ranked and (
                name in facts.graph_outputs
                or any(c not in members for c in facts.consumers.get(name, ()))):
            return True
    return False


def keep_qdq_pairs(parts: Sequence[Partition], facts: ClusterFacts) -> list[Partition]:
    """Never let a cluster boundary fall between a QuantizeLinear and a DequantizeLinear it feeds.

    TensorRT fuses a Q/DQ pair into the quantized layer around it; an engine that ends in a Q
    (or starts at a DQ) would hand int8 data across the boundary and lose the fusion. The
    clustered member of a split pair leaves its cluster (which splits into convex pieces), until
    no pair straddles a boundary.
    """
    current = [set(p.nodes) for p in parts]
    while True:
        owner = {n: k for k, members in enumerate(current) for n in members}
        split = _straddling_pair(facts, owner)
        if split is None:
            break
        key = owner[split]
        pieces = split_without(current[key], split, facts)
        current[key:key + 1] = [set(p.nodes) for p in pieces]
    return sorted((Partition(_ordered(m, facts)) for m in current), key=lambda p: p.nodes[0])


def _straddling_pair(facts: ClusterFacts, owner: dict[int, int]) -> int | None:
    """The clustered member of the first Q -> DQ pair whose two nodes sit in different places."""
    for node in sorted(owner, key=facts.position.__getitem__):
        op = facts.op_types[node]
        if op == "QuantizeLinear":
            partners = [c for c in facts.consumers.get(facts.outputs[node][0], ())
                        if facts.op_types[c] == "DequantizeLinear"]
        elif op == "DequantizeLinear":
            producer = facts.producer.get(facts.inputs[node][0]) if facts.inputs[node] else None
            partners = [producer] if producer is not None and \
                facts.op_types[producer] == "QuantizeLinear" else []
        else:
            continue
        if any(owner.get(p) != owner[node] for p in partners):
            return node
    return None


def _external_shape_inputs(members: set[int], facts: ClusterFacts) -> list[tuple[str, int]]:
    """(tensor, member reading it) for shape tensors that come from outside ``members``."""
    marked: dict[str, int] = {}
    for node in sorted(members, reverse=True):
        for slot in facts.shape_inputs(node):
            if slot < len(facts.inputs[node]) and facts.inputs[node][slot]:
                marked.setdefault(facts.inputs[node][slot], node)
        if facts.op_types[node] not in SHAPE_SOURCES and any(
            o in marked for o in facts.outputs[node]
        ):
            for name in facts.inputs[node]:
                marked.setdefault(name, node)
    bad = [
        (name, node) for name, node in marked.items()
        if name not in facts.constants and facts.producer.get(name) not in members
    ]
    return sorted(bad, key=lambda item: (item[1], item[0]))


# Node visits all cycle checks of one conversion may spend; past it, pulling a producer in is
# refused (the safe answer), so adversarial graphs cannot make the filter quadratic.
_SEARCH_VISITS = 2_000_000


def _can_add(
    node: int, members: set[int], facts: ClusterFacts,
    groups: dict[int, set[int]], owner: dict[int, int], budget: SearchBudget,
) -> bool:
    """Adding ``node`` is cycle-free when no other path joins it and the cluster either way.

    Paths run through the graph with every other cluster contracted, as the rewritten graph
    will have them. Once ``budget`` is spent the answer is "cycle" (safe: the consumer then
    stays outside instead).
    """
    def expand(n: int) -> set[int]:
        key = owner.get(n)
        return groups[key] if key is not None else {n}

    graph = facts.graph
    into = [s for s in graph.succ[node] if s not in members]
    out_of = [s for m in members for s in graph.succ[m] if s not in members and s != node]
    return (not reaches(graph, into, members, expand, budget)
            and not reaches(graph, out_of, {node}, expand, budget))


def split_without(members: set[int], removed: int, facts: ClusterFacts) -> list[Partition]:
    """The convex pieces left when ``removed`` leaves a convex cluster.

    Members reachable from ``removed`` and the others are each convex; their connected
    components are the new clusters.
    """
    rest = members - {removed}
    below: set[int] = set()
    stack = [s for s in facts.graph.succ[removed] if s in rest]
    while stack:
        node = stack.pop()
        if node not in below:
            below.add(node)
            stack.extend(s for s in facts.graph.succ[node] if s in rest)
    pieces = []
    for group in (rest - below, below):
        if group:
            pieces.extend(_components(_ordered(group, facts), facts.graph))
    return pieces


def _components(nodes: Sequence[int], graph: DependencyGraph) -> list[Partition]:
    members = set(nodes)
    order = {n: i for i, n in enumerate(nodes)}
    seen: set[int] = set()
    found = []
    for start in nodes:
        if start in seen:
            continue
        group = []
        stack = [start]
        seen.add(start)
        while stack:
            node = stack.pop()
            group.append(node)
            for nxt in (*graph.succ[node], *graph.pred[node]):
                if nxt in members and nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        found.append(Partition(tuple(sorted(group, key=order.__getitem__))))
    return found


def _ordered(members: set[int], facts: ClusterFacts) -> tuple[int, ...]:
    return tuple(sorted(members, key=facts.position.__getitem__))
