"""What the picture draws: each node of the graph with the engine that runs it (or why it
stays in ONNX Runtime), the data edges between them, and the partition report."""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from collections.abc import Iterable, Mapping

import onnx

from hybridtrt.compiler.pipeline import analyze_clusters
from hybridtrt.config import TensorRTConfig
from hybridtrt.core.graph import GraphIndex
from hybridtrt.core.hybrid import HybridModel
from hybridtrt.core.inline import inline_engines
from hybridtrt.core.report import OutsideNode, Report
from hybridtrt.errors import InternalError

__all__ = ["GraphView", "PictureNode", "view_of_hybrid", "view_of_model"]


@dataclasses.dataclass(frozen=True)
class PictureNode:
    """One ONNX node as the picture shows it.

    Attributes:
        name: The node's name.
        op_type: Its op type.
        group: The engine that runs it, or "" when it stays in ONNX Runtime.
        reason: Why it stays in ONNX Runtime ("" for engine nodes).
    """

    name: str
    op_type: str
    group: str
    reason: str


@dataclasses.dataclass(frozen=True)
class GraphView:
    """What the picture draws: the nodes with their engine, the data edges and the report.

    Attributes:
        title: Names the model (its file name, or "<ModelProto>").
        nodes: Every node of the main graph, in graph order.
        edges: ``(producer, consumer)`` node indices; sorted, no repeats.
        engines: Engine names in number order (``tensorrt_engine_0, 1, ...``), which picks
            their colours; every non-empty group is one of them.
        report: The partition report (summary, op table, engines).
    """

    title: str
    nodes: tuple[PictureNode, ...]
    edges: tuple[tuple[int, int], ...]
    engines: tuple[str, ...]
    report: Report

    def __post_init__(self) -> None:
        count = len(self.nodes)
        bad = [(u, v) for u, v in self.edges if not (0 <= u < count and 0 <= v < count) or u == v]
        if bad:
            raise InternalError(f"edges {bad[:3]} do not join two different nodes of {count}")
        unknown = sorted({n.group for n in self.nodes if n.group} - set(self.engines))
        if unknown:
            raise InternalError(f"groups {unknown} are not among the engines {list(self.engines)}")


def view_of_model(
    model: onnx.ModelProto | str | os.PathLike[str], config: TensorRTConfig | None = None
) -> GraphView:
    """The view of a plain ONNX model as ``convert`` would partition it (nothing is built).

    Args:
        model: Path of an ``.onnx`` file or a ModelProto.
        config: ``disable_ops``, ``min_subgraph_size`` and shape ranges, as for ``convert``.

    Raises:
        ModelLoadError, UnsupportedModelError, ConfigError: As ``analyze`` raises them.
    """
    report, clustering = analyze_clusters(model, config)
    if len(report.engines) != len(clustering.parts):
        raise InternalError(f"{len(clustering.parts)} clusters but {len(report.engines)} engines "
                            "in the report")
    group = {n: e.name for p, e in zip(clustering.parts, report.engines) for n in p.nodes}
    reasons = _reasons(clustering.outside)
    nodes = tuple(_node(proto, group.get(k, ""), reasons)
                  for k, proto in enumerate(clustering.index.nodes))
    return GraphView(report.source, nodes, tuple(clustering.index.edges()),
                     tuple(e.name for e in report.engines), report)


def view_of_hybrid(hybrid: HybridModel, title: str | None = None) -> GraphView:
    """The view of a converted model: its engines inlined back into the full node graph.

    Args:
        hybrid: A hybrid model (``convert``'s result or ``hybridtrt.load``'s).
        title: Names the picture (default: the source named in the stored report).

    Raises:
        FormatError: The model carries no report, or an engine is not wrapped as it should be.
    """
    report = hybrid.report()
    plain = inline_engines(hybrid.model)
    owner = {_key(n): r.name for r in hybrid.engines for n in r.subgraph.node}
    reasons = _reasons(report.outside)
    nodes = tuple(_node(n, owner.get(_key(n), ""), reasons) for n in plain.graph.node)
    return GraphView(title or report.source, nodes, tuple(GraphIndex(plain).edges()),
                     tuple(e.name for e in report.engines), report)


def _key(node: onnx.NodeProto) -> tuple[str, tuple[str, ...]]:
    """Identifies a node even when names are empty or repeated (output names never repeat)."""
    return node.name, tuple(node.output)


def _reasons(outside: Iterable[OutsideNode]) -> dict[str, deque[str]]:
    found: dict[str, deque[str]] = {}
    for node in outside:
        found.setdefault(node.name, deque()).append(node.reason)
    return found


def _node(proto: onnx.NodeProto, group: str, reasons: Mapping[str, deque[str]]) -> PictureNode:
    queue = reasons.get(proto.name)
    reason = queue.popleft() if not group and queue else ""
    return PictureNode(proto.name, proto.op_type, group, reason)
