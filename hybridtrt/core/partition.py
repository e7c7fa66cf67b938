"""Stage 3: propose cycle-free clusters of supported nodes, deterministically.

The proposal schedules the graph in a topological order that keeps nodes of one kind
(supported / unsupported) together as long as it can. A run of consecutive nodes of a
topological order is convex (no path leaves it and comes back), so every connected piece of a
supported run is a valid cluster. The schedule is tried forwards (as soon as possible) and
backwards (as late as possible); the one giving fewer clusters wins.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Iterable, Sequence

import networkx as nx

from hybridtrt.errors import InternalError

__all__ = [
    "DependencyGraph", "Partition", "SearchBudget", "check_acyclic", "contracted_order", "propose",
    "reaches",
]


@dataclasses.dataclass(frozen=True)
class Partition:
    """One cluster of node indices (sorted by topological position)."""

    nodes: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.nodes)


class DependencyGraph:
    """Plain successor/predecessor lists over node indices ``0..count-1``.

    Args:
        count: Number of nodes.
        edges: Dependencies (u, v): v reads a value u produces. Duplicates are fine.
    """

    def __init__(self, count: int, edges: Iterable[tuple[int, int]]) -> None:
        self.count = count
        self.succ: list[list[int]] = [[] for _ in range(count)]
        self.pred: list[list[int]] = [[] for _ in range(count)]
        self.edge_list = sorted({(u, v) for u, v in edges if u != v})
        for u, v in self.edge_list:
            self.succ[u].append(v)
            self.pred[v].append(u)

    @classmethod
    def from_predecessors(cls, pred: list[list[int]]) -> DependencyGraph:
        """The graph whose node ``v`` depends on ``pred[v]`` (ascending, distinct, not ``v``);
        the same graph as from those edges, built without sorting them."""
        graph = cls(0, ())
        succ: list[list[int]] = [[] for _ in pred]
        for v, sources in enumerate(pred):
            for u in sources:
                succ[u].append(v)
        graph.count, graph.succ, graph.pred = len(pred), succ, pred
        graph.edge_list = [(u, v) for u, targets in enumerate(succ) for v in targets]
        return graph

    def reversed(self) -> DependencyGraph:
        flipped = DependencyGraph(0, ())
        flipped.count, flipped.succ, flipped.pred = self.count, self.pred, self.succ
        flipped.edge_list = [(v, u) for u, v in self.edge_list]
        return flipped


def propose(
    graph: DependencyGraph, supported: Sequence[bool], split_components: bool = True
) -> list[Partition]:
    """Cycle-free clusters of supported nodes, in order of their first node's position.

    Args:
        graph: Node dependencies.
        supported: ``supported[i]`` is True when TensorRT can run node ``i``.
        split_components: Split each run into its connected pieces (engines); False keeps
            whole runs (the runtime's ORT segments, where fewer sessions is better).

    Returns:
        Clusters covering every supported node exactly once.
    """
    if len(supported) != graph.count:
        raise InternalError("capability answers and graph size differ")
    forward = _clusters(graph, supported, _affinity_order(graph, supported), split_components)
    backward = _clusters(
        graph, supported, list(reversed(_affinity_order(graph.reversed(), supported))),
        split_components,
    )
    best = backward if len(backward) < len(forward) else forward
    return sorted(best, key=lambda p: p.nodes[0])


def _affinity_order(graph: DependencyGraph, supported: Sequence[bool]) -> list[int]:
    """Kahn's algorithm that keeps taking nodes of the current kind while any is ready."""
    indegree = [len(p) for p in graph.pred]
    ready: dict[bool, list[int]] = {True: [], False: []}
    for node in range(graph.count):
        if indegree[node] == 0:
            ready[bool(supported[node])].append(node)
    for heap in ready.values():
        heapq.heapify(heap)
    # Unsupported first: it unlocks more supported nodes for the following run.
    kind = not ready[False]
    order: list[int] = []
    while ready[True] or ready[False]:
        if not ready[kind]:
            kind = not kind
        node = heapq.heappop(ready[kind])
        order.append(node)
        for nxt in graph.succ[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(ready[bool(supported[nxt])], nxt)
    if len(order) != graph.count:
        raise InternalError("dependency graph has a cycle")
    return order


def _clusters(
    graph: DependencyGraph, supported: Sequence[bool], order: Sequence[int], split: bool
) -> list[Partition]:
    run = [-1] * graph.count
    current = -1
    previous = False
    for node in order:
        if supported[node]:
            if not previous:
                current += 1
            run[node] = current
        previous = bool(supported[node])
    if not split:
        runs: dict[int, list[int]] = {}
        for node in order:
            if run[node] >= 0:
                runs.setdefault(run[node], []).append(node)
        return [Partition(tuple(nodes)) for nodes in runs.values()]
    piece = _pieces(graph, run)
    members: dict[int, list[int]] = {}
    for node in order:
        if run[node] >= 0:
            members.setdefault(piece[node], []).append(node)
    return [Partition(tuple(nodes)) for nodes in members.values()]


def _pieces(graph: DependencyGraph, run: Sequence[int]) -> list[int]:
    """``piece[node]``: a label shared by the nodes of one run joined by edges (either way)
    inside it, -1 outside every run."""
    piece = [-1] * graph.count
    succ, pred = graph.succ, graph.pred
    for start in range(graph.count):
        if run[start] < 0 or piece[start] >= 0:
            continue
        kind = run[start]
        piece[start] = start
        stack = [start]
        while stack:
            node = stack.pop()
            for near in (succ[node], pred[node]):
                for other in near:
                    if piece[other] < 0 and run[other] == kind:
                        piece[other] = start
                        stack.append(other)
    return piece


def check_acyclic(graph: DependencyGraph, partitions: Sequence[Partition], stage: str) -> None:
    """Raise InternalError when contracting the clusters would create a cycle.

    A cluster that a path leaves and re-enters, or two clusters that feed each other, make
    the contracted graph cyclic; both are bugs of the stage named by ``stage``.
    """
    unit = _units(graph.count, partitions)
    contracted = graph.count + len(partitions)
    indegree = [0] * contracted
    succ: list[list[int]] = [[] for _ in range(contracted)]
    for u, targets in enumerate(graph.succ):  # repeated edges count once per copy, both ways
        a = unit[u]
        for v in targets:
            b = unit[v]
            if a != b:
                succ[a].append(b)
                indegree[b] += 1
    live = set(unit)
    stack = [k for k in live if indegree[k] == 0]
    seen = 0
    while stack:
        k = stack.pop()
        seen += 1
        for nxt in succ[k]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                stack.append(nxt)
    if seen != len(live):
        edges = {(unit[u], unit[v]) for u in range(graph.count) for v in graph.succ[u]}
        edges = {(a, b) for a, b in edges if a != b}
        cycle = nx.find_cycle(nx.DiGraph(list(edges)))
        clusters = sorted({a - graph.count for a, _ in cycle if a >= graph.count})
        raise InternalError(
            f"{stage}: clusters {clusters} would form a cycle once contracted (a path leaves a "
            "cluster and re-enters it)"
        )


def _units(count: int, partitions: Sequence[Partition]) -> list[int]:
    """``unit[node]``: ``count + k`` for a node of cluster k, the node itself otherwise."""
    return [count + k if k >= 0 else n for n, k in enumerate(_owners(count, partitions))]


def _owners(count: int, partitions: Sequence[Partition]) -> list[int]:
    owner = [-1] * count
    for k, part in enumerate(partitions):
        for node in part.nodes:
            if owner[node] >= 0:
                raise InternalError(f"node {node} is in clusters {owner[node]} and {k}")
            owner[node] = k
    return owner


class SearchBudget:
    """A number of node visits shared by many ``reaches`` calls (bounds their total cost)."""

    def __init__(self, visits: int) -> None:
        self.visits = visits


def reaches(
    graph: DependencyGraph,
    sources: Iterable[int],
    targets: set[int],
    expand: Callable[[int], Iterable[int]],
    budget: SearchBudget | None = None,
) -> bool:
    """Whether a path leads from ``sources`` to ``targets`` in the graph contracted by ``expand``.

    ``expand(node)`` lists the nodes that count as the same vertex as ``node`` (the members of
    its cluster, or the node itself), so paths through other clusters are followed as the
    rewritten graph will have them. When ``budget`` runs out it answers True (the safe
    answer for a cycle check).
    """
    seen: set[int] = set()
    stack = list(sources)
    while stack:
        node = stack.pop()
        if node in targets:
            return True
        if node in seen:
            continue
        if budget is not None:
            budget.visits -= 1
            if budget.visits < 0:
                return True
        for same in expand(node):
            seen.add(same)
            stack.extend(n for n in graph.succ[same] if n not in seen)
    return False


def contracted_order(graph: DependencyGraph, parts: Sequence[Partition]) -> list[tuple[str, int]]:
    """A stable topological order of the graph with each cluster contracted to one unit.

    Returns ``("node", index)`` for nodes outside clusters and ``("cluster", k)`` for cluster k.
    Among ready units the one whose first node comes first in the original order goes first,
    so the original order is kept wherever the dependencies allow.
    """
    count = graph.count
    unit = _units(count, parts)
    first = {count + k: min(p.nodes) for k, p in enumerate(parts)}
    succ: dict[int, set[int]] = {}
    indegree = dict.fromkeys(unit, 0)
    for u, v in graph.edge_list:
        a, b = unit[u], unit[v]
        if a != b and b not in succ.setdefault(a, set()):
            succ[a].add(b)
            indegree[b] += 1
    ready = [(first.get(u, u), u) for u, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[tuple[str, int]] = []
    while ready:
        _, u = heapq.heappop(ready)
        order.append(("node", u) if u < count else ("cluster", u - count))
        for v in sorted(succ.get(u, ())):
            indegree[v] -= 1
            if indegree[v] == 0:
                heapq.heappush(ready, (first.get(v, v), v))
    if len(order) != len(indegree):
        raise InternalError("the contracted graph has a cycle")
    return order
