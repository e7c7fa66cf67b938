"""Partitioner tests on small named graphs: expected clusters, forced splits, cycles, determinism."""

from __future__ import annotations

import random

import pytest

from hybridtrt.core.partition import DependencyGraph, Partition, check_acyclic, propose
from hybridtrt.errors import InternalError


def named(edges: str, unsupported: str = "") -> tuple[DependencyGraph, list[bool], list[str]]:
    """'a>b b>c' with unsupported names listed; node indices follow first appearance."""
    names: list[str] = []
    pairs = []
    for edge in edges.split():
        u, v = edge.split(">")
        for n in (u, v):
            if n not in names:
                names.append(n)
        pairs.append((names.index(u), names.index(v)))
    bad = set(unsupported.split())
    return DependencyGraph(len(names), pairs), [n not in bad for n in names], names


def clusters(edges: str, unsupported: str = "") -> list[set[str]]:
    graph, supported, names = named(edges, unsupported)
    parts = propose(graph, supported)
    check_acyclic(graph, parts, "test")
    return [{names[i] for i in p.nodes} for p in parts]


def test_chain_broken_by_unsupported_node_gives_two_clusters() -> None:
    assert clusters("a>b b>u u>c c>d", "u") == [{"a", "b"}, {"c", "d"}]


def test_path_through_unsupported_node_forces_a_split() -> None:
    # a feeds b directly and through u; one cluster {a, b} would leave and re-enter itself.
    assert clusters("a>b a>u u>b", "u") == [{"a"}, {"b"}]


def test_diamond_of_supported_nodes_is_one_cluster() -> None:
    assert clusters("a>b a>c b>d c>d") == [{"a", "b", "c", "d"}]


def test_independent_branches_are_separate_clusters() -> None:
    assert clusters("a>b c>d") == [{"a", "b"}, {"c", "d"}]


def test_late_scheduling_merges_a_node_with_its_only_consumer() -> None:
    # x is ready at once but only feeds y, which waits for z>u; x and y can share a cluster.
    assert clusters("z>u u>y x>y", "u") == [{"z"}, {"x", "y"}]


def test_unsupported_side_branch_keeps_both_sides_together_when_no_path_returns() -> None:
    assert clusters("a>b b>c b>u", "u") == [{"a", "b", "c"}]


def test_skip_connection_around_unsupported_node() -> None:
    # a>b>u>c and a skip a>c: c depends on u, so {a, b} and {c} are separate.
    assert clusters("a>b b>u u>c a>c", "u") == [{"a", "b"}, {"c"}]


def test_all_unsupported_gives_no_cluster() -> None:
    assert clusters("a>b", "a b") == []


def test_check_acyclic_rejects_a_cluster_that_a_path_leaves_and_reenters() -> None:
    graph, _, names = named("a>b a>u u>b")
    bad = [Partition((names.index("a"), names.index("b")))]
    with pytest.raises(InternalError, match="cycle"):
        check_acyclic(graph, bad, "test")


def test_check_acyclic_rejects_two_clusters_feeding_each_other() -> None:
    graph, _, names = named("a>b c>d")
    # {a, d} and {c, b} are each convex, but a>b and c>d make them depend on each other.
    crossed = [Partition((names.index("a"), names.index("d"))),
               Partition((names.index("c"), names.index("b")))]
    with pytest.raises(InternalError, match="cycle"):
        check_acyclic(graph, crossed, "test")
    fine = [Partition((names.index("a"), names.index("b"))),
            Partition((names.index("c"), names.index("d")))]
    check_acyclic(graph, fine, "test")
    graph2, _, names2 = named("a>b b>c c>d")
    crossed = [Partition((names2.index("a"), names2.index("c"))),
               Partition((names2.index("b"), names2.index("d")))]
    with pytest.raises(InternalError, match="cycle"):
        check_acyclic(graph2, crossed, "test")


def test_node_in_two_clusters_is_an_internal_error() -> None:
    graph, _, _ = named("a>b")
    with pytest.raises(InternalError, match="is in clusters"):
        check_acyclic(graph, [Partition((0,)), Partition((0, 1))], "test")


def _random_dag(rng: random.Random, size: int) -> tuple[DependencyGraph, list[bool]]:
    edges = [(u, v) for v in range(size) for u in rng.sample(range(v), min(v, rng.randint(0, 3)))]
    return DependencyGraph(size, edges), [rng.random() < 0.7 for _ in range(size)]


@pytest.mark.parametrize("seed", range(200))
def test_random_graphs_give_cycle_free_clusters_covering_every_supported_node(seed: int) -> None:
    rng = random.Random(seed)
    graph, supported = _random_dag(rng, rng.randint(2, 60))
    parts = propose(graph, supported)
    check_acyclic(graph, parts, "random")
    covered = sorted(n for p in parts for n in p.nodes)
    assert covered == [i for i, s in enumerate(supported) if s]
    for part in parts:
        assert all(supported[n] for n in part.nodes)


def test_same_graph_in_any_edge_order_gives_the_same_clusters() -> None:
    rng = random.Random(7)
    graph, supported = _random_dag(rng, 300)
    edges = [(u, v) for u in range(graph.count) for v in graph.succ[u]]
    first = propose(graph, supported)
    for _ in range(5):
        rng.shuffle(edges)
        assert propose(DependencyGraph(graph.count, edges), supported) == first


def test_whole_runs_keep_independent_pieces_together_when_asked() -> None:
    graph, supported, names = named("a>b c>d b>u", "u")
    parts = propose(graph, supported, split_components=False)
    check_acyclic(graph, parts, "runs")
    assert [{names[i] for i in p.nodes} for p in parts] == [{"a", "b", "c", "d"}]
