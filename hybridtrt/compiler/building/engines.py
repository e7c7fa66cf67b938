"""Stage 6, engines: every cluster built, split where TensorRT's parser disagrees with our
rules and bisected where the build fails; the records of the engines that result."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx

from hybridtrt.compiler import filters
from hybridtrt.compiler.building.refine import Rejection, bisect_build, parser_resolve
from hybridtrt.compiler.precision.measure import EngineRuns, engine_runs
from hybridtrt.compiler.precision.stage import PrecisionStage, Typed
from hybridtrt.compiler.shapes import RunPlan, ShapeRange, record_shapes
from hybridtrt.config import PrecisionMode, TensorRTConfig
from hybridtrt.core.format import (STATUS_BUILT, STATUS_NOT_BUILT, EngineRecord, PlanBytes,
                                   subgraph_digest)
from hybridtrt.core.graph import GraphIndex
from hybridtrt.core.partition import Partition
from hybridtrt.core.report import OutsideNode
from hybridtrt.core.rewrite import ClusterIO, cluster_io, extract_subgraph
from hybridtrt.progress import bar
from hybridtrt.trt.engine import BuildResult, EngineBuilder

__all__ = ["Engines", "ShapeBook", "build_engines", "outside_node"]

_LOG = logging.getLogger("hybridtrt")

SPILL_ABOVE = 1 << 26  # bytes of a plan that waits in a file (a full plan: its weights' size)


class ShapeBook:
    """Recorded shape ranges of boundary tensors, one dict per profile, recorded on demand
    (bisection makes new boundaries after the first recording)."""

    def __init__(self, index: GraphIndex, plans: Sequence[RunPlan],
                 recorded: Mapping[str, Mapping[str, Sequence[int]]] | None = None) -> None:
        self.index = index
        self.plans = plans
        self.ranges: list[dict[str, ShapeRange]] = [{} for _ in plans]
        self.recorded = recorded or {}  # ranges recorded on real inputs (shape_range_info)
        self.ios: dict[tuple[int, ...], ClusterIO] = {}

    def io(self, part: Partition) -> ClusterIO:
        """The part's boundary (``cluster_io`` sharing shape values), found once."""
        found = self.ios.get(part.nodes)
        if found is None:
            found = self.ios[part.nodes] = cluster_io(self.index, part, share_shapes=True)
        return found

    def need(self, parts: Sequence[Partition]) -> None:
        ios = [self.io(p) for p in parts]
        names = list(dict.fromkeys(n for io in ios for n in (*io.inputs, *io.outputs)))
        missing = [n for n in names if self.ranges and n not in self.ranges[0]]
        if missing:
            for known, found in zip(self.ranges, record_shapes(self.index, missing, self.plans)):
                known.update({n: _widened(r, self.recorded.get(n)) for n, r in found.items()})

    def profiles(self, names: Sequence[str]) -> tuple[dict[str, dict[str, list[int]]], ...]:
        return tuple({n: r[n].to_json() for n in names} for r in self.ranges)


def _widened(found: ShapeRange, recorded: Mapping[str, Sequence[int]] | None) -> ShapeRange:
    """``found`` (from the warm-up runs) widened to the range recorded on real inputs."""
    if recorded is None or len(recorded["min"]) != len(found.min):
        return found
    low = tuple(min(a, int(b)) for a, b in zip(found.min, recorded["min"]))
    high = tuple(max(a, int(b)) for a, b in zip(found.max, recorded["max"]))
    return ShapeRange(low, found.opt, high)


@dataclasses.dataclass(frozen=True)
class Engines:
    """The engine stage's outcome: the final clusters (after TensorRT's refinements)."""

    parts: tuple[Partition, ...]
    ios: tuple[ClusterIO, ...]
    records: tuple[EngineRecord, ...]
    rejected: tuple[Rejection, ...]
    disagreements: tuple[OutsideNode, ...]


@dataclasses.dataclass
class _Sub:
    """One cluster as a model: FP32 (for the parser) and typed (for the build and the record,
    made on first use: pieces the parser refuses are never lowered or accuracy-checked)."""

    model: onnx.ModelProto
    make_typed: Callable[[], Typed]
    io: ClusterIO
    ins: tuple[Any, ...]
    outs: tuple[Any, ...]

    @functools.cached_property
    def typed(self) -> Typed:
        return self.make_typed()


def build_engines(
    index: GraphIndex, parts: Sequence[Partition], book: ShapeBook, config: TensorRTConfig,
    builder: EngineBuilder, precision: PrecisionStage | None,
    facts: filters.ClusterFacts | None = None, spill: Path | None = None,
) -> Engines:
    """Build every cluster; split it where TensorRT's parser disagrees, bisect it where the
    build fails, and keep the parts that build (each new piece cut by ``facts`` as the
    partition's filters cut clusters). Plans over ``SPILL_ABOVE`` wait for their engine
    nodes in files in ``spill`` (when given): the next engines build without them in memory."""
    stage = _EngineStage(index, book, config, builder, precision, facts, spill)
    with bar(total=len(parts), desc="engines", unit="engine") as shown:
        for k, part in enumerate(parts):
            stage.build_cluster(part, f"tensorrt_engine_{k}", shown.note)
            shown.advance()
    return Engines(tuple(p for p, _ in stage.final), tuple(io for _, io in stage.final),
                    tuple(stage.records), tuple(stage.rejected), tuple(stage.disagreements))


class _EngineStage:
    """The engine stage's state: each cluster's model (made once), and what was built or refused."""

    def __init__(self, index: GraphIndex, book: ShapeBook, config: TensorRTConfig,
                 builder: EngineBuilder, precision: PrecisionStage | None,
                 facts: filters.ClusterFacts | None = None, spill: Path | None = None) -> None:
        self.index, self.book, self.config, self.facts = index, book, config, facts
        self.spill = spill
        self.builder, self.precision = builder, precision
        self.taken = {n.name for n in index.nodes} | set(index.producer) | set(index.consumers)
        self.settings = config.build_settings()
        self.made: dict[tuple[int, ...], _Sub] = {}
        self.records: list[EngineRecord] = []
        self.rejected: list[Rejection] = []
        self.final: list[tuple[Partition, ClusterIO]] = []
        self.disagreements: list[OutsideNode] = []

    def worth(self, part: Partition) -> bool:
        count = sum(self.index.op_types[n] != "Constant" for n in part.nodes)
        return count >= self.config.min_subgraph_size

    def submodel(self, part: Partition, name: str) -> _Sub:
        """The part as a model, made once (the parser, the build and the record share it)."""
        if part.nodes not in self.made:
            index = self.index
            self.book.need([part])
            io = self.book.io(part)
            ins, outs = self.book.profiles(io.inputs), self.book.profiles(io.outputs)
            model = onnx.helper.make_model(onnx.GraphProto(),
                                           opset_imports=list(index.model.opset_import))
            extract_subgraph(index, part, io, name, ins, outs, into=model.graph)  # weights once
            precision, prefix = self.precision, f"{name}_{part.nodes[0]}/"
            typed: Callable[[], Typed] = (
                (lambda: precision.apply(model, prefix, name, self.guard_runs(name, ins)))
                if precision is not None
                else (lambda: Typed(model, {"mode": self.config.precision_mode.value,
                                            "fp32_nodes": []})))
            self.made[part.nodes] = _Sub(model, typed, io, ins, outs)
        return self.made[part.nodes]

    @functools.cached_property
    def _guard_runs(self) -> EngineRuns | None:
        """Runs of the engine itself for the accuracy guard, when TensorRT executes engines here."""
        config = self.config
        if not config.accuracy_check or config.precision_mode is PrecisionMode.FP32:
            return None
        runs, why = engine_runs(self.builder, config.device_id)
        _LOG.info("accuracy guard: lowered engines are measured %s",
                  "through TensorRT" if runs is not None
                  else f"through ONNX Runtime's emulation ({why})")
        return runs

    def guard_runs(self, name: str, profiles: Sequence[Mapping[str, Any]]) -> EngineRuns | None:
        """The accuracy guard's runs of engine ``name`` (None: ONNX Runtime emulates it)."""
        runs = self._guard_runs
        return runs.for_engine(name, profiles, self.settings) if runs is not None else None

    def settle(self, piece: Partition) -> tuple[list[Partition], list[Rejection]]:
        """``piece`` cut as the partition's filters cut clusters: a split by TensorRT can put
        a shape tensor or a shape set by unknown values on a new edge."""
        if self.facts is None:
            return [piece], []
        pieces, cut = filters.settle([piece], self.facts, pull=False)
        return pieces, [Rejection(n, reason) for n, reason in sorted(cut.items())]

    def parser_pieces(self, part: Partition, label: str) -> list[Partition]:
        """The pieces of the part TensorRT's parser accepts whole (worth an engine)."""
        pieces, refused = parser_resolve(
            part, lambda p: self.builder.parser_support(self.submodel(p, label).model), self.worth,
            self.settle)
        self.rejected += [r for r in refused if not r.by_parser]
        refused = [r for r in refused if r.by_parser]
        self.rejected += refused
        self.disagreements += [outside_node(self.index, r) for r in refused]
        self.rejected += [Rejection(n, "left too small for min_subgraph_size after TensorRT's "
                                       "parser split its cluster")
                          for p in pieces if not self.worth(p) for n in p.nodes]
        return [p for p in pieces if self.worth(p)]

    def build_cluster(self, part: Partition, label: str, note: Callable[[str], None]) -> None:
        """Build ``part`` (bisecting what fails) and record every engine that results."""

        def build(piece: Partition) -> BuildResult:
            sub = self.submodel(piece, label)
            note(f"{label} ({len(piece)} nodes)")  # bisection rebuilds show on the bar
            _LOG.info("engine %s: %d nodes, %d inputs, %d outputs, %s", label, len(piece),
                      len(sub.io.inputs), len(sub.io.outputs), sub.typed.info["mode"])
            return self.builder.build(label, sub.typed.model, sub.ins, self.settings)

        note(label)
        built: list[tuple[Partition, BuildResult]] = []
        for piece in self.parser_pieces(part, label):
            done, refused = bisect_build(piece, build, self.worth, self.config.strict,
                                         lambda p: f"{label} ({len(p)} nodes)", self.settle)
            built += done
            self.rejected += refused
        for j, (piece, result) in enumerate(built):
            name = _free_name(label if len(built) == 1 else f"{label}_{j}", self.taken)
            sub = self.submodel(piece, label)
            graph = sub.typed.model.graph
            graph.name = name  # the build is done; the record takes the graph as it is
            plan = _held(name, result.plan, self.spill)
            self.records.append(_record(name, graph, sub, self.settings, self.config, result, plan))
            self.final.append((piece, sub.io))


def _held(name: str, plan: bytes, spill: Path | None) -> PlanBytes:
    """Where a built plan waits for its engine node: in a file in ``spill`` when it is over
    ``SPILL_ABOVE`` (in memory when the file cannot be written), else in memory."""
    if spill is None or len(plan) <= SPILL_ABOVE:
        return PlanBytes(plan)
    path = spill / f"{name}.plan"  # (engine names are unique in a conversion)
    try:
        path.write_bytes(plan)
    except OSError as exc:
        _LOG.info("engine %s: its plan stays in memory (%s: %s)", name, path, exc.strerror)
        return PlanBytes(plan)
    return PlanBytes(file=path)


def _record(name: str, subgraph: onnx.GraphProto, sub: _Sub, settings: dict[str, Any],
            config: TensorRTConfig, built: BuildResult, plan: PlanBytes) -> EngineRecord:
    fingerprint = {"settings_sha256": config.settings_hash(), **built.fingerprint}
    return EngineRecord(
        name=name, subgraph=subgraph, subgraph_sha256=subgraph_digest(subgraph),
        profiles=sub.ins, output_shapes=sub.outs, build_settings=settings,
        precision=sub.typed.info,
        status=STATUS_BUILT if built.plan else STATUS_NOT_BUILT,
        status_reason=built.reason if not built.plan else "",
        plan=plan, fingerprint=fingerprint,
        engine_sha256=_sha256(built.plan) if built.plan else "",
    )


def outside_node(index: GraphIndex, rejection: Rejection) -> OutsideNode:
    node = index.nodes[rejection.node]
    return OutsideNode(node.name, node.op_type, rejection.reason)


def _free_name(name: str, taken: set[str]) -> str:
    """``name`` (with "_" appended as needed) such that it and the names derived from it for
    the combine/split nodes and packed values clash with no node or tensor of the model."""
    def derived(base: str) -> list[str]:
        return [base] + [f"{base}__{s}" for s in ("inputs", "outputs", "combine", "split")]

    while any(n in taken for n in derived(name)):
        name += "_"
    taken.update(derived(name))
    return name


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
