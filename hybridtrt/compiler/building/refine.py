"""Refine clusters with TensorRT's own answers: split where its parser disagrees with our
rules, and bisect a cluster that fails to build until the parts that build are found."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from hybridtrt.trt.engine import BuildResult
from hybridtrt.core.partition import Partition
from hybridtrt.errors import EngineBuildError
from hybridtrt.trt.api import ParserVerdict

__all__ = ["Rejection", "bisect_build", "parser_resolve"]


@dataclasses.dataclass(frozen=True)
class Rejection:
    """A node TensorRT refused after our rules accepted it.

    Attributes:
        node: Node index in the model.
        reason: Why it stays in ONNX Runtime, with TensorRT's text.
        by_parser: TensorRT's ONNX parser rejected it (a disagreement with our rules).
    """

    node: int
    reason: str
    by_parser: bool = False


def _runs(nodes: Sequence[int], keep: Callable[[int], bool]) -> list[Partition]:
    """Maximal runs of consecutive kept nodes. A run of a cluster's topologically sorted nodes
    is itself cycle-free: no path can leave it and come back, since every node between its
    first and last is in it."""
    runs: list[list[int]] = [[]]
    for node in nodes:
        if keep(node):
            runs[-1].append(node)
        elif runs[-1]:
            runs.append([])
    return [Partition(tuple(r)) for r in runs if r]


def parser_resolve(
    part: Partition,
    ask: Callable[[Partition], ParserVerdict | None],
    worth_asking: Callable[[Partition], bool],
    settle: Callable[[Partition], tuple[list[Partition], list[Rejection]]] | None = None,
) -> tuple[list[Partition], list[Rejection]]:
    """The pieces of ``part`` TensorRT's parser accepts whole, asking again node by node.

    onnx-tensorrt marks every subgraph unsupported once one node fails, so one verdict cannot
    tell the culprit's neighbours from the culprit (ONNX Runtime's TensorRT provider re-asks
    too). Each rejected run is asked again without the nodes the parser blamed; a run refused
    with no node blamed is halved, down to single nodes. Pieces too small to be worth an engine
    are returned unasked (the caller drops them). ``settle`` cuts every new piece where the
    partition's filters would, before it is asked about (pieces, nodes left out).
    """
    accepted: list[Partition] = []
    rejected: list[Rejection] = []
    pending = [part]
    while pending:
        current = pending.pop()
        verdict = ask(current) if worth_asking(current) else None
        if verdict is None or len(verdict.supported) == len(current):
            accepted.append(current)
            continue
        position = {node: k for k, node in enumerate(current.nodes)}
        blamed = {n for n in current.nodes
                  if position[n] in verdict.reasons and position[n] not in verdict.supported}
        if not blamed and len(current) == 1:
            blamed = set(current.nodes)
        if blamed:
            rejected += [Rejection(n, "TensorRT's ONNX parser rejects it: "
                                      + verdict.reasons.get(position[n], "unsupported in this TensorRT"),
                                   by_parser=True) for n in current.nodes if n in blamed]
            pieces = _runs(current.nodes, lambda n: n not in blamed)
        else:
            middle = len(current) // 2
            pieces = [Partition(current.nodes[:middle]), Partition(current.nodes[middle:])]
        for piece in reversed(pieces):
            settled, cut = settle(piece) if settle is not None else ([piece], [])
            rejected += cut
            pending += reversed(settled)
    accepted.sort(key=lambda p: p.nodes[0])
    return accepted, rejected


def bisect_build(
    part: Partition,
    build: Callable[[Partition], BuildResult],
    worth_building: Callable[[Partition], bool],
    strict: bool,
    label: Callable[[Partition], str],
    settle: Callable[[Partition], tuple[list[Partition], list[Rejection]]] | None = None,
) -> tuple[list[tuple[Partition, BuildResult]], list[Rejection]]:
    """Build ``part``; when TensorRT refuses it, build halves until the parts that build are found.

    Halves are halves of the topologically sorted node list, so each stays cycle-free and no
    cycle appears between them. A half too small to be worth an engine goes to ONNX Runtime.

    Args:
        part: The cluster.
        build: Builds one partition (its failure is ``BuildResult.error``).
        worth_building: Whether a partition is big enough (``min_subgraph_size``).
        strict: Raise instead of bisecting.
        label: Names a partition in messages.
        settle: Cuts a half where the partition's filters would (pieces, nodes left out).

    Raises:
        EngineBuildError: ``strict`` is set and TensorRT refused a cluster.
    """
    built: list[tuple[Partition, BuildResult]] = []
    rejected: list[Rejection] = []
    pending = [part]
    while pending:
        current = pending.pop()
        result = build(current)
        if not result.error:
            built.append((current, result))
            continue
        if strict:
            raise EngineBuildError(f"TensorRT could not build {label(current)}: {result.error}")
        if len(current) == 1:
            rejected.append(Rejection(current.nodes[0], f"TensorRT cannot build it: {result.error}"))
            continue
        middle = len(current) // 2
        for half in (Partition(current.nodes[middle:]), Partition(current.nodes[:middle])):
            pieces, cut = settle(half) if settle is not None else ([half], [])
            rejected += cut
            for piece in reversed(pieces):
                if worth_building(piece):
                    pending.append(piece)  # the first half is popped (built) first
                else:
                    rejected.extend(Rejection(n, f"its cluster failed to build in TensorRT "
                                                 f"({result.error}) and this part of it is below "
                                                 "min_subgraph_size") for n in piece.nodes)
    built.sort(key=lambda item: item[0].nodes[0])
    return built, rejected
