"""Plan once at load: where each engine runs, and the segments to run in topological order.

Engines that cannot run in TensorRT are inlined back into the ONNX part (unless isolated), then
the ONNX nodes are grouped into maximal cycle-free ONNX Runtime segments by the same partitioner
the compiler uses (here "supported" means "not an engine node").
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import onnx
from onnx import TensorProto

from hybridtrt.core.external import light_model
from hybridtrt.core.graph import GraphIndex
from hybridtrt.core.hybrid import HybridModel
from hybridtrt.core.inline import inline_engines
from hybridtrt.core.fp32 import as_fp32, low_precision_types
from hybridtrt.core.partition import check_acyclic, contracted_order, propose
from hybridtrt.core.rewrite import cluster_io, extract_subgraph
from hybridtrt.errors import IncompatibleEngineError, InternalError
from hybridtrt.core.format import COMBINE, DOMAIN, ENGINE, SPLIT, STATUS_BUILT, EngineRecord
from hybridtrt.runtime.config import RuntimeSettings
from hybridtrt.runtime.engines import EngineLoader, LoadedEngine
from hybridtrt.runtime.graphs import GraphStatus
from hybridtrt.trt.api import TrtBackend
from hybridtrt.trt.backends import load_backend
from hybridtrt.trt.library import label

_LOG = logging.getLogger("hybridtrt")

__all__ = ["EnginePlacement", "Plan", "SegmentSpec", "make_plan", "place_engine"]

TENSORRT = "tensorrt"
ONNXRUNTIME = "onnxruntime"


@dataclasses.dataclass(frozen=True)
class EnginePlacement:
    """Where one engine runs and why (for TensorRT: where its plan came from).

    ``graphs``: whether the segments it runs in are captured as CUDA graphs, and if not, why
    (filled by ``Predictor.engine_status``; empty in a plan).
    """

    name: str
    runs_in: str
    reason: str
    isolated: bool
    graphs: tuple[GraphStatus, ...] = ()


@dataclasses.dataclass(frozen=True)
class SegmentSpec:
    """One step of the plan.

    Attributes:
        kind: ``"ort"`` (an ONNX Runtime session) or ``"engine"`` (a TensorRT engine, or an
            isolated fallback engine run by ONNX Runtime).
        name: ``ort_segment_<k>`` or the engine node's name.
        model: The ONNX model the segment runs (for engines: the embedded subgraph).
        inputs: Tensor names read, in the model's input order.
        outputs: Tensor names written, in the model's output order.
        engine: The engine record for engine segments.
    """

    kind: str
    name: str
    model: onnx.ModelProto
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    engine: EngineRecord | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """Segments in run order, engine placements, and when each value can be freed.

    Attributes:
        segments: Steps in topological order.
        placements: One per engine, in graph order.
        last_use: Tensor name -> index of the last segment that reads it (model outputs absent).
        engines: The TensorRT engines, by engine name (shared by predictor clones).
        loader: Builds wider engines when ``allow_rebuild`` is set (None without TensorRT).
    """

    segments: tuple[SegmentSpec, ...]
    placements: tuple[EnginePlacement, ...]
    last_use: dict[str, int]
    engines: dict[str, LoadedEngine] = dataclasses.field(default_factory=dict)
    loader: EngineLoader | None = None


def place_engine(record: EngineRecord, settings: RuntimeSettings, unusable: str,
                 loader: EngineLoader | None, model: onnx.ModelProto) -> tuple[EnginePlacement, LoadedEngine | None]:
    """Decide where an engine runs; load (or build) it when TensorRT can run it here.

    Args:
        record: The engine node's record.
        settings: The predictor's settings.
        unusable: Why TensorRT cannot run anything here ("" when it can).
        loader: Loads and builds engines (None when ``unusable``).
        model: The engine's subgraph as a model.
    """
    isolated = settings.isolate_engines
    if unusable or loader is None:
        if record.status != STATUS_BUILT:
            unusable = record.status_reason or unusable or "the engine was not built"
        return EnginePlacement(record.name, ONNXRUNTIME, unusable, isolated), None
    loaded, why = loader.load(record, model)
    if loaded is None:
        return EnginePlacement(record.name, ONNXRUNTIME, why, isolated), None
    library = f"{label(loader.backend.library)} {loader.backend.version}"
    return EnginePlacement(record.name, TENSORRT, f"{library}, plan from {loaded.origin}",
                           False), loaded


def make_plan(hybrid: HybridModel, settings: RuntimeSettings,
              backend: TrtBackend | None = None) -> Plan:
    """Place the engines, inline the fallback ones (unless isolated) and cut ORT segments.

    Args:
        hybrid: The loaded hybrid model.
        settings: The predictor's settings.
        backend: TensorRT behind its narrow interface (default: the installed one, if any).

    Raises:
        IncompatibleEngineError: ``require_tensorrt`` is set and an engine cannot run in TensorRT.
    """
    unusable = ""
    if backend is None:
        backend, unusable = load_backend()
    if backend is not None and not unusable:
        unusable = backend.unusable_reason("cuda" if settings.use_gpu else "cpu", settings.device_id)
    loader = None if backend is None or unusable else EngineLoader(
        backend, settings.device_id, settings.engine_cache_dir, settings.build_engines)
    opsets = [o for o in hybrid.model.opset_import if o.domain != DOMAIN]
    placed = [place_engine(r, settings, unusable, loader,
                           _engine_model(r, opsets, hybrid.model.ir_version))
              for r in hybrid.engines]
    placements = tuple(p for p, _ in placed)
    engines = {p.name: loaded for p, loaded in placed if loaded is not None}
    fallback = [p for p in placements if p.runs_in != TENSORRT]
    if settings.require_tensorrt and fallback:
        listed = "; ".join(f"{p.name}: {p.reason}" for p in fallback)
        raise IncompatibleEngineError(f"TensorRT is required but these engines cannot use it: {listed}")
    inline = {p.name for p in fallback if not settings.isolate_engines}
    working = inline_engines(hybrid.model, lambda record: record.name in inline,
                             lambda record: ort_graph(record, settings.use_gpu))
    records = {r.name: r for r in hybrid.engines}
    segments = _pruned(_segments(working, _typed(working, records), records, set(engines),
                                 settings.use_gpu), working)
    return Plan(segments, placements, _last_use(segments, working), engines, loader)


# The 16-bit types hybridtrt writes into an engine per precision mode.
_WRITTEN = {"fp16": {TensorProto.FLOAT16}, "bf16": {TensorProto.BFLOAT16}}


def ort_graph(record: EngineRecord, use_gpu: bool = False) -> onnx.GraphProto:
    """An engine's subgraph as ONNX Runtime runs it: BF16 (and FP16 on the CPU) emulated in
    FP32 with explicit rounding (ORT has almost no BF16 kernels, and on the CPU runs FP16 nodes
    in FP32 without rounding), everything else as recorded."""
    mode = record.precision.get("mode")
    types = low_precision_types(record.subgraph) & _WRITTEN.get(str(mode), set())
    if use_gpu:
        types.discard(TensorProto.FLOAT16)  # CUDA kernels compute FP16 for real
    boundary = {v.type.tensor_type.elem_type for v in (*record.subgraph.input, *record.subgraph.output)}
    if not types or types & boundary:
        return record.subgraph  # not lowered by hybridtrt, or 16-bit at its edges: as recorded
    _LOG.info("engine %s computes in %s; ONNX Runtime runs it in FP32 with every such value "
              "rounded", record.name, "/".join(TensorProto.DataType.Name(t) for t in sorted(types)))
    return as_fp32(record.subgraph, types)


def _engine_model(record: EngineRecord, opsets: Sequence[onnx.OperatorSetIdProto],
                  ir_version: int, for_ort: bool = False, use_gpu: bool = False) -> onnx.ModelProto:
    graph = ort_graph(record, use_gpu) if for_ort else record.subgraph
    sub = onnx.helper.make_model(graph, opset_imports=list(opsets))
    sub.ir_version = ir_version
    return sub


def _typed(model: onnx.ModelProto, records: dict[str, EngineRecord]) -> onnx.ModelProto:
    """Shape-infer the working model, telling inference the types of the engines' outputs."""
    typed = light_model(model)  # types only: large weights as typed inputs, never copied
    for node in typed.graph.node:
        if node.domain == DOMAIN and node.op_type == ENGINE:
            typed.graph.value_info.extend(records[node.name].subgraph.output)
    try:
        return onnx.shape_inference.infer_shapes(typed)
    except (onnx.shape_inference.InferenceError, RuntimeError):
        return typed


def _segments(
    model: onnx.ModelProto, typed: onnx.ModelProto, records: dict[str, EngineRecord],
    in_tensorrt: set[str], use_gpu: bool,
) -> tuple[SegmentSpec, ...]:
    """Cut ``model`` into segments; ``typed`` (its shape-inferred copy) only supplies types."""
    index = GraphIndex(model, typed)
    engine_ops = (COMBINE, ENGINE, SPLIT)
    plain = [not (n.domain == DOMAIN and n.op_type in engine_ops) for n in index.nodes]
    parts = propose(index.deps, plain, split_components=False)
    check_acyclic(index.deps, parts, "runtime segmentation")
    opsets = [o for o in model.opset_import if o.domain != DOMAIN]
    found: list[SegmentSpec] = []
    for kind, key in contracted_order(index.deps, parts):
        if kind == "cluster":
            io = cluster_io(index, parts[key])
            if not io.outputs:
                continue  # dead nodes: nothing reads what they compute
            name = f"ort_segment_{len(found)}"
            sub = onnx.helper.make_model(onnx.GraphProto(), opset_imports=opsets)
            extract_subgraph(index, parts[key], io, name, [], [], inferred_dims=False,
                             into=sub.graph)  # the weights copied once
            sub.ir_version = model.ir_version
            found.append(SegmentSpec("ort", name, sub, io.inputs, io.outputs))
        elif index.nodes[key].op_type == ENGINE:
            node = index.nodes[key]
            found.append(_engine_segment(node, records, opsets, model.ir_version,
                                         node.name not in in_tensorrt, use_gpu))
    return tuple(found)


def _engine_segment(
    node: onnx.NodeProto, records: dict[str, EngineRecord],
    opsets: Sequence[onnx.OperatorSetIdProto], ir_version: int, for_ort: bool, use_gpu: bool,
) -> SegmentSpec:
    record = records.get(node.name)
    if record is None:
        raise InternalError(f"engine node {node.name} has no record")
    return SegmentSpec("engine", record.name, _engine_model(record, opsets, ir_version, for_ort, use_gpu),
                       tuple(record.input_names), tuple(record.output_names), record)


def _pruned(segments: Sequence[SegmentSpec], model: onnx.ModelProto) -> tuple[SegmentSpec, ...]:
    """ORT segments export only what a later segment or the caller reads.

    A Constant node's value read by another segment is copied into that segment, so the
    segment holding the node need not export it (each export is a copy per run).
    """
    wanted = {o.name for o in model.graph.output}
    kept: list[SegmentSpec] = []
    for spec in reversed(segments):
        if spec.kind == "ort":
            outputs = tuple(o for o in spec.outputs if o in wanted)
            if not outputs:
                continue  # nothing it computes is read
            if outputs != spec.outputs:
                sub = onnx.ModelProto()
                sub.CopyFrom(spec.model)
                del sub.graph.output[:]
                sub.graph.output.extend(o for o in spec.model.graph.output if o.name in outputs)
                spec = dataclasses.replace(spec, model=sub, outputs=outputs)
        wanted.update(spec.inputs)
        kept.append(spec)
    return tuple(reversed(kept))


def _last_use(segments: Sequence[SegmentSpec], model: onnx.ModelProto) -> dict[str, int]:
    keep = {o.name for o in model.graph.output}
    last: dict[str, int] = {}
    for position, segment in enumerate(segments):
        for name in segment.inputs:
            if name not in keep:
                last[name] = position
    return last
