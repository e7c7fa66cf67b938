"""Stages 2-3: capability and partition, the clusters of a model and why every other node
stays in ONNX Runtime."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

from hybridtrt.compiler import filters
from hybridtrt.compiler.capability import CapabilityReport, judge_graph
from hybridtrt.compiler.facts import cluster_facts, known_values
from hybridtrt.config import TensorRTConfig
import hybridtrt.converters  # noqa: F401  (importing it registers every op rule)
from hybridtrt.converters.registry import REGISTRY, Registry
from hybridtrt.core.graph import GraphIndex
from hybridtrt.core.loading import LoadedModel
from hybridtrt.core.partition import Partition, check_acyclic, propose
from hybridtrt.core.report import OutsideNode
from hybridtrt.trt.library import rules_library

__all__ = ["Clustering", "cluster", "graph_index", "judge", "partition", "rules_for"]

_LOG = logging.getLogger("hybridtrt")


@dataclasses.dataclass(frozen=True)
class Clustering:
    """The clusters of a model and the reason every other node stays in ONNX Runtime.

    ``facts`` is what the filters knew; the engine stage cuts the pieces it makes by them.
    """

    index: GraphIndex
    capability: CapabilityReport
    parts: tuple[Partition, ...]
    outside: tuple[OutsideNode, ...]
    facts: filters.ClusterFacts | None = None


def cluster(
    loaded: LoadedModel, config: TensorRTConfig, registry: Registry = REGISTRY
) -> Clustering:
    """Stages 2-3: capability, proposal and filters; every cluster checked to be cycle-free.

    Args:
        loaded: The loaded model.
        config: Supplies ``disable_ops`` and ``min_subgraph_size``.
        registry: The op rules to consult (tests pass a small fake one).
    """
    index = graph_index(loaded)
    rules = rules_for(config, registry)
    return partition(index, judge(index, config, rules), config, rules)


def graph_index(loaded: LoadedModel) -> GraphIndex:
    """The graph index of the loaded model, checked to be acyclic.

    Raises:
        UnsupportedModelError: The graph has a cycle.
    """
    index = GraphIndex(loaded.model, loaded.inferred)
    index.topo_order  # raises UnsupportedModelError on a cyclic graph
    return index


def rules_for(config: TensorRTConfig, registry: Registry = REGISTRY) -> Registry:
    """The op rules of the TensorRT library ``config.backend`` names."""
    return registry.for_library(rules_library(config.backend))


def judge(index: GraphIndex, config: TensorRTConfig, rules: Registry) -> CapabilityReport:
    """Stage 2: a verdict for every node; ``disable_ops`` naming nothing is warned about."""
    capability = judge_graph(index, rules, config.disable_ops)
    known = {n.name for n in index.nodes} | set(index.op_types)
    unknown = [k for k in config.disable_ops if k not in known]
    if unknown:
        _LOG.warning("disable_ops: %s name no node and no op type of this model",
                     ", ".join(repr(k) for k in unknown))
    return capability


def partition(
    index: GraphIndex, capability: CapabilityReport, config: TensorRTConfig, rules: Registry,
    ranged: frozenset[str] = frozenset(),
) -> Clustering:
    """Stage 3: proposal and filters, each cluster checked to be cycle-free after both
    (``ranged``: tensors whose shape range was recorded on real inputs)."""
    graph = index.deps
    parts = propose(graph, capability.supported)
    check_acyclic(graph, parts, "partition")
    why: dict[int, str] = {}
    facts = cluster_facts(index, graph, capability.supported, rules,
                          known_values(index, config.inputs), ranged)
    parts = _filtered(parts, facts, config, why)
    check_acyclic(graph, parts, "filters")
    inside = {n for p in parts for n in p.nodes}
    outside = [
        OutsideNode(v.name, v.op_type, why[v.index] if v.supported else v.reason)
        for v in capability.verdicts if v.index not in inside
    ]
    _LOG.info("%d of %d nodes in %d cluster(s)", sum(len(p) for p in parts), len(index.nodes),
              len(parts))
    return Clustering(index, capability, tuple(parts), tuple(outside), facts)


def _filtered(
    parts: list[Partition], facts: filters.ClusterFacts, config: TensorRTConfig,
    why: dict[int, str],
) -> list[Partition]:
    """The proposed clusters after every filter; ``why`` gets the reason each dropped node left."""
    parts = _track(parts, filters.trim_shape_outputs(parts, facts), why,
                   lambda n: "shape computation at a cluster's end runs outside TensorRT")
    parts, cut = filters.settle(parts, facts)
    why.update(cut)
    parts = _track(parts, filters.drop_unused(parts, facts), why,
                   lambda n: "its cluster computes nothing the model uses")
    parts = _track(parts, filters.drop_trivial(parts, facts), why,
                   lambda n: "its cluster does only shape, identity or constant work")
    counts = [filters.compute_nodes(p, facts) for p in parts]
    sizes = {n: count for p, count in zip(parts, counts) for n in p.nodes}
    return _track(parts, filters.drop_small(parts, config.min_subgraph_size, facts), why,
                  lambda n: f"its cluster has {sizes[n]} node(s) besides constants, fewer "
                            f"than min_subgraph_size={config.min_subgraph_size}")


def _track(
    before: Sequence[Partition], after: Sequence[Partition], why: dict[int, str],
    reason: Callable[[int], str],
) -> list[Partition]:
    kept = {n for p in after for n in p.nodes}
    for part in before:
        for node in part.nodes:
            if node not in kept:
                why[node] = reason(node)  # the latest filter to drop a node says why
    return list(after)
