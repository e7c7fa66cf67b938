"""``convert``: load -> capability -> partition -> shape ranges -> engines -> rewrite -> save."""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from contextlib import contextmanager
from pathlib import Path

import onnx

from hybridtrt import __version__
from hybridtrt.compiler import filters
from hybridtrt.compiler.calibration import NEEDS_DATA
from hybridtrt.compiler.capability import CapabilityReport, judge_graph
from hybridtrt.trt.engine import BuildResult, EngineBuilder, NotBuilding
from hybridtrt.core.graph import GraphIndex
from hybridtrt.core.hybrid import HybridModel
from hybridtrt.core.loading import LoadedModel, load_model
from hybridtrt.core.partition import DependencyGraph, Partition, check_acyclic, propose
from hybridtrt.compiler.precision import PrecisionStage, Typed, carries_qdq, prepare_model
from hybridtrt.core.report import OutsideNode, Report, engine_summary, op_table
from hybridtrt.compiler.refine import Rejection, bisect_build, parser_resolve
from hybridtrt.core.rewrite import ClusterIO, cluster_io, extract_subgraph, rewrite
from hybridtrt.compiler.shape_info import ShapeRangeInfo, read_shape_range_info
from hybridtrt.compiler.shapes import RunPlan, ShapeRange, plan_runs, record_shapes, static_shape
from hybridtrt.trt.builder import default_builder
from hybridtrt.config import Input, PrecisionMode, TensorRTConfig
from hybridtrt.errors import ConfigError
import hybridtrt.converters  # noqa: F401  (importing it registers every op rule)
from hybridtrt.converters.registry import REGISTRY, Registry
from hybridtrt.core.format import (
    FORMAT_VERSION,
    META_FORMAT,
    META_REPORT,
    META_VERSION,
    STATUS_BUILT,
    STATUS_NOT_BUILT,
    EngineRecord,
    subgraph_digest,
)
from hybridtrt.progress import bar
from hybridtrt.trt.library import rules_library

__all__ = ["Clustering", "analyze", "analyze_clusters", "cluster", "convert"]

_LOG = logging.getLogger("hybridtrt")


_TIMES: dict[str, float] = {}


@contextmanager
def _stage(name: str) -> Iterator[None]:
    """Log a stage's start and duration, and keep the duration for ``HybridModel.stage_seconds``."""
    start = time.perf_counter()
    _LOG.info("%s ...", name)
    yield
    elapsed = time.perf_counter() - start
    _TIMES[name] = _TIMES.get(name, 0.0) + elapsed
    _LOG.info("%s done in %.2f s", name, elapsed)


@dataclasses.dataclass(frozen=True)
class Clustering:
    """The clusters of a model and the reason every other node stays in ONNX Runtime."""

    index: GraphIndex
    capability: CapabilityReport
    parts: tuple[Partition, ...]
    outside: tuple[OutsideNode, ...]


def cluster(
    loaded: LoadedModel, config: TensorRTConfig, registry: Registry = REGISTRY
) -> Clustering:
    """Stages 2-3: capability, proposal and filters; every cluster checked to be cycle-free.

    Args:
        loaded: The loaded model.
        config: Supplies ``disable_ops`` and ``min_subgraph_size``.
        registry: The op rules to consult (tests pass a small fake one).
    """
    index = GraphIndex(loaded.model, loaded.inferred)
    index.topo_order  # raises UnsupportedModelError on a cyclic graph
    registry = registry.for_library(rules_library(config.backend))
    with _stage("capability"):
        capability = judge_graph(index, registry, config.disable_ops)
    known = {n.name for n in index.nodes} | {n.op_type for n in index.nodes}
    unknown = [k for k in config.disable_ops if k not in known]
    if unknown:
        _LOG.warning("disable_ops: %s name no node and no op type of this model",
                     ", ".join(repr(k) for k in unknown))
    with _stage("partition"):
        graph = index.deps
        parts = propose(graph, capability.supported)
        check_acyclic(graph, parts, "partition")
        facts = _facts(index, graph, capability, registry)
        why: dict[int, str] = {}
        parts = _track(parts, filters.trim_shape_outputs(parts, facts), why,
                       lambda n: "shape computation at a cluster's end runs outside TensorRT")
        parts = _track(parts, filters.fix_shape_tensor_inputs(parts, facts), why,
                       lambda n: "reads a shape tensor computed outside TensorRT")
        parts = _track(parts, filters.keep_qdq_pairs(parts, facts), why,
                       lambda n: "its QuantizeLinear/DequantizeLinear partner runs outside "
                                 "TensorRT (a Q/DQ pair is never split)")
        parts = _track(parts, filters.drop_unused(parts, facts), why,
                       lambda n: "its cluster computes nothing the model uses")
        parts = _track(parts, filters.drop_trivial(parts, facts), why,
                       lambda n: "its cluster does only shape, identity or constant work")
        counts = [filters.compute_nodes(p, facts) for p in parts]
        sizes = {n: count for p, count in zip(parts, counts) for n in p.nodes}
        parts = _track(parts, filters.drop_small(parts, config.min_subgraph_size, facts), why,
                       lambda n: f"its cluster has {sizes[n]} node(s) besides constants, fewer "
                                 f"than min_subgraph_size={config.min_subgraph_size}")
        check_acyclic(graph, parts, "filters")
    inside = {n for p in parts for n in p.nodes}
    outside = [
        OutsideNode(v.name, v.op_type, why[v.index] if v.supported else v.reason)
        for v in capability.verdicts if v.index not in inside
    ]
    _LOG.info("%d of %d nodes in %d cluster(s)", sum(len(p) for p in parts), len(index.nodes),
              len(parts))
    return Clustering(index, capability, tuple(parts), tuple(outside))


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


def _facts(
    index: GraphIndex, graph: DependencyGraph, capability: CapabilityReport, registry: Registry
) -> filters.ClusterFacts:
    def shape_inputs(node: int) -> Sequence[int]:
        proto = index.nodes[node]
        domain = "" if proto.domain == "ai.onnx" else proto.domain
        found = registry.find(proto.op_type, domain, index.opsets.get(domain, 1))
        return found.shape_inputs if found is not None else ()

    return filters.ClusterFacts(
        graph=graph,
        op_types=[n.op_type for n in index.nodes],
        inputs=index.node_inputs,
        outputs=[list(n.output) for n in index.nodes],
        producer=index.producer,
        consumers=index.consumers,
        graph_outputs=frozenset(index.graph_outputs),
        constants=(frozenset(index.initializers) - index.overridable) | frozenset(index.constant_nodes),
        shape_inputs=shape_inputs,
        supported=capability.supported,
        position=index.position,
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the duration of a conversion.

    Conversion allocates millions of small, acyclic objects (protos, tuples, dict entries);
    with the collector running, full collections over them made large models superlinear.
    Reference counting still frees everything; the previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def convert(
    model: onnx.ModelProto | str | os.PathLike[str],
    config: TensorRTConfig | None = None,
    *,
    builder: EngineBuilder | None = None,
) -> HybridModel:
    """Turn an ONNX model into a hybrid model of TensorRT engines and ONNX Runtime nodes.

    Args:
        model: Path of an ``.onnx`` file (external data included) or a ModelProto.
        config: Shape ranges and build settings; the default suits fully static models.
        builder: Engine builder (default: TensorRT when usable, else engines are left unbuilt).

    Returns:
        The hybrid model; also saved to ``config.save_model_dir`` when that is set.

    Raises:
        ModelLoadError, InputError, ConfigError, UnsupportedModelError, SaveError.

    Example:
        >>> hybrid = convert("model.onnx", TensorRTConfig(inputs=[]))  # doctest: +SKIP
        >>> hybrid.save("model.hybrid.onnx")  # doctest: +SKIP
    """
    config = config or TensorRTConfig()
    with _collector_paused():
        return _convert(model, config, builder)


def _convert(
    model: onnx.ModelProto | str | os.PathLike[str], config: TensorRTConfig,
    builder: EngineBuilder | None,
) -> HybridModel:
    _TIMES.clear()
    with _stage("load"):
        original = load_model(model)
        recorded = _recorded(original, config)
        loaded = prepare_model(original, config)
    _check_int8_source(loaded, config)
    clustering = cluster(loaded, config)
    index = clustering.index
    with _stage("shape ranges"):
        book = _ShapeBook(index, plan_runs(index, _inputs(config, recorded)), recorded)
        book.need(clustering.parts)
    with _stage("precision"):
        precision = PrecisionStage(index, book.plans, config)
        precision.prepare(clustering.parts)
    with _stage("engines"):
        builder = builder or default_builder(config.cache_dir, config.device_id, None,
                                             config.backend, config.target_compute_capabilities)
        engines = _engines(index, clustering.parts, book, config, builder, precision)
    if precision.guard_seconds:
        _TIMES["accuracy guard"] = precision.guard_seconds  # within "engines"
    clustering = _refined(clustering, engines)
    check_acyclic(index.deps, clustering.parts, "rewrite")
    report = _report(loaded, clustering, engines.records, engines.disagreements)
    with _stage("rewrite"):
        hybrid_proto = rewrite(index, clustering.parts, engines.ios, engines.records, {
            META_FORMAT: str(FORMAT_VERSION),
            META_VERSION: __version__,
            META_REPORT: report.to_json(indent=None),
        })
    hybrid = HybridModel(hybrid_proto, stage_seconds=dict(_TIMES))
    if config.save_model_dir is not None:
        with _stage("save"):
            path = hybrid.save(Path(config.save_model_dir))
            _LOG.info("saved %s", path)
    return hybrid


def _recorded(loaded: LoadedModel, config: TensorRTConfig) -> ShapeRangeInfo | None:
    """``config.shape_range_info``, read and checked against the model as given."""
    if config.shape_range_info is None:
        return None
    return read_shape_range_info(Path(config.shape_range_info), loaded.model)


def _inputs(config: TensorRTConfig, recorded: ShapeRangeInfo | None) -> Sequence[Input]:
    return recorded.profile_inputs() if recorded is not None else config.inputs


def _check_int8_source(loaded: LoadedModel, config: TensorRTConfig) -> None:
    """Fail fast when INT8 has nothing to take its scales from."""
    cache = config.calibration_cache
    if (config.precision_mode is PrecisionMode.INT8 and config.calibration_data is None
            and not carries_qdq(loaded.model) and (cache is None or not Path(cache).is_file())):
        raise ConfigError(NEEDS_DATA)


def analyze(
    model: onnx.ModelProto | str | os.PathLike[str], config: TensorRTConfig | None = None
) -> Report:
    """The partition report of ``model`` without building or saving anything.

    Shape ranges are recorded only when ``config.inputs`` gives them (or the model is static).
    """
    return analyze_clusters(model, config)[0]


def analyze_clusters(
    model: onnx.ModelProto | str | os.PathLike[str], config: TensorRTConfig | None = None
) -> tuple[Report, Clustering]:
    """``analyze``'s report, and the clusters it describes (one per engine, in order)."""
    config = config or TensorRTConfig()
    loaded = load_model(model)
    recorded = _recorded(loaded, config)
    clustering = cluster(loaded, config)
    index = clustering.index
    inputs = _inputs(config, recorded)
    plans = plan_runs(index, inputs) if inputs or not _dynamic_inputs(index) else []
    book = _ShapeBook(index, plans, recorded)
    book.need(clustering.parts)
    precision = None
    if config.precision_mode in (PrecisionMode.FP16, PrecisionMode.BF16):
        precision = PrecisionStage(index, plans, config)
        precision.prepare(clustering.parts)
    engines = _engines(index, clustering.parts, book, config,
                       NotBuilding("inspection only: nothing is built"), precision)
    return _report(loaded, clustering, engines.records, ()), _refined(clustering, engines)


def _dynamic_inputs(index: GraphIndex) -> list[str]:
    return [n for n in index.graph_inputs if static_shape(index.info(n)) is None]


class _ShapeBook:
    """Recorded shape ranges of boundary tensors, one dict per profile, recorded on demand
    (bisection makes new boundaries after the first recording)."""

    def __init__(self, index: GraphIndex, plans: Sequence[RunPlan],
                 recorded: ShapeRangeInfo | None = None) -> None:
        self.index = index
        self.plans = plans
        self.ranges: list[dict[str, ShapeRange]] = [{} for _ in plans]
        self.recorded = recorded.tensors if recorded is not None else {}

    def need(self, parts: Sequence[Partition]) -> None:
        ios = [cluster_io(self.index, p, share_shapes=True) for p in parts]
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
class _Engines:
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


def _engines(
    index: GraphIndex, parts: Sequence[Partition], book: _ShapeBook, config: TensorRTConfig,
    builder: EngineBuilder, precision: PrecisionStage | None,
) -> _Engines:
    """Build every cluster; split it where TensorRT's parser disagrees, bisect it where the
    build fails, and keep the parts that build."""
    stage = _EngineStage(index, book, config, builder, precision)
    with bar(total=len(parts), desc="engines", unit="engine") as shown:
        for k, part in enumerate(parts):
            stage.build_cluster(part, f"tensorrt_engine_{k}", shown.note)
            shown.advance()
    return _Engines(tuple(p for p, _ in stage.final), tuple(io for _, io in stage.final),
                    tuple(stage.records), tuple(stage.rejected), tuple(stage.disagreements))


class _EngineStage:
    """The engine stage's state: each cluster's model (made once), and what was built or refused."""

    def __init__(self, index: GraphIndex, book: _ShapeBook, config: TensorRTConfig,
                 builder: EngineBuilder, precision: PrecisionStage | None) -> None:
        self.index, self.book, self.config = index, book, config
        self.builder, self.precision = builder, precision
        self.taken = {n.name for n in index.nodes} | set(index.producer) | set(index.consumers)
        self.settings = config.build_settings()
        self.made: dict[tuple[int, ...], _Sub] = {}
        self.records: list[EngineRecord] = []
        self.rejected: list[Rejection] = []
        self.final: list[tuple[Partition, ClusterIO]] = []
        self.disagreements: list[OutsideNode] = []

    def worth(self, part: Partition) -> bool:
        count = sum(self.index.nodes[n].op_type != "Constant" for n in part.nodes)
        return count >= self.config.min_subgraph_size

    def submodel(self, part: Partition, name: str) -> _Sub:
        """The part as a model, made once (the parser, the build and the record share it)."""
        if part.nodes not in self.made:
            index = self.index
            self.book.need([part])
            io = cluster_io(index, part, share_shapes=True)
            ins, outs = self.book.profiles(io.inputs), self.book.profiles(io.outputs)
            model = onnx.helper.make_model(onnx.GraphProto(),
                                           opset_imports=list(index.model.opset_import))
            extract_subgraph(index, part, io, name, ins, outs, into=model.graph)  # weights once
            precision, prefix = self.precision, f"{name}_{part.nodes[0]}/"
            typed: Callable[[], Typed] = (
                (lambda: precision.apply(model, prefix, name)) if precision is not None
                else (lambda: Typed(model, {"mode": self.config.precision_mode.value,
                                            "fp32_nodes": []})))
            self.made[part.nodes] = _Sub(model, typed, io, ins, outs)
        return self.made[part.nodes]

    def parser_pieces(self, part: Partition, label: str) -> list[Partition]:
        """The pieces of the part TensorRT's parser accepts whole (worth an engine)."""
        pieces, refused = parser_resolve(
            part, lambda p: self.builder.parser_support(self.submodel(p, label).model), self.worth)
        self.rejected += refused
        self.disagreements += [_outside(self.index, r) for r in refused]
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
                                         lambda p: f"{label} ({len(p)} nodes)")
            built += done
            self.rejected += refused
        for j, (piece, result) in enumerate(built):
            name = _free_name(label if len(built) == 1 else f"{label}_{j}", self.taken)
            sub = self.submodel(piece, label)
            graph = sub.typed.model.graph
            graph.name = name  # the build is done; the record takes the graph as it is
            self.records.append(_record(name, graph, sub, self.settings, self.config, result))
            self.final.append((piece, sub.io))


def _record(name: str, subgraph: onnx.GraphProto, sub: _Sub, settings: dict[str, Any],
            config: TensorRTConfig, built: BuildResult) -> EngineRecord:
    fingerprint = {"settings_sha256": config.settings_hash(), **built.fingerprint}
    return EngineRecord(
        name=name, subgraph=subgraph, subgraph_sha256=subgraph_digest(subgraph),
        profiles=sub.ins, output_shapes=sub.outs, build_settings=settings,
        precision=sub.typed.info,
        status=STATUS_BUILT if built.plan else STATUS_NOT_BUILT,
        status_reason=built.reason if not built.plan else "",
        engine=built.plan, fingerprint=fingerprint,
        engine_sha256=_sha256(built.plan) if built.plan else "",
    )


def _outside(index: GraphIndex, rejection: Rejection) -> OutsideNode:
    node = index.nodes[rejection.node]
    return OutsideNode(node.name, node.op_type, rejection.reason)


def _refined(clustering: Clustering, engines: _Engines) -> Clustering:
    """The clustering after the engine stage: its final parts, and the refused nodes outside."""
    if not engines.rejected:
        return dataclasses.replace(clustering, parts=engines.parts)
    refused = {r.node: r for r in engines.rejected}
    outside = list(clustering.outside) + [_outside(clustering.index, r) for r in refused.values()]
    position = {v.name: k for k, v in enumerate(clustering.capability.verdicts)}
    outside.sort(key=lambda o: position.get(o.name, len(position)))
    return dataclasses.replace(clustering, parts=engines.parts, outside=tuple(outside))


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


def _report(loaded: LoadedModel, clustering: Clustering, records: Sequence[EngineRecord],
            disagreements: Sequence[OutsideNode]) -> Report:
    source = Path(loaded.source).name if loaded.source != "<ModelProto>" else loaded.source
    return Report(
        source=source,
        nodes=len(clustering.index.nodes),
        nodes_in_tensorrt=sum(len(p) for p in clustering.parts),
        ops=op_table(clustering.index.nodes, clustering.outside),
        engines=tuple(engine_summary(r) for r in records),
        outside=clustering.outside,
        disagreements=tuple(disagreements),
    )
