"""Stage 6: replace each cluster by ``combine -> tensorrt_engine -> split`` in the main graph."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import onnx
from onnx import TensorProto, numpy_helper

from hybridtrt.core.graph import SHAPE_SOURCES
from hybridtrt.core.graph import GraphIndex, outer_scope_inputs
from hybridtrt.core.partition import Partition, contracted_order
from hybridtrt.converters.registry import TensorInfo
from hybridtrt.errors import InternalError
from hybridtrt.core.format import COMBINE, DOMAIN, ENGINE, FORMAT_VERSION, SPLIT, EngineRecord, add_engine_attributes

__all__ = ["ClusterIO", "cluster_io", "extract_subgraph", "rewrite"]


@dataclasses.dataclass(frozen=True)
class ClusterIO:
    """The tensors that cross one cluster's boundary, in a fixed order.

    Attributes:
        inputs: Computed tensors the cluster reads from outside (engine inputs).
        outputs: Tensors it computes that are read outside or are model outputs.
        constants: Initializers and Constant outputs from outside that it reads (copied in).
        shared: Member nodes that also stay outside (see ``cluster_io``'s ``share_shapes``).
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    constants: tuple[str, ...]
    shared: tuple[int, ...] = ()


def cluster_io(index: GraphIndex, part: Partition, share_shapes: bool = False) -> ClusterIO:
    """Find the boundary of a cluster: inputs in first-use order, outputs in production order.

    Args:
        index: The graph.
        part: The cluster.
        share_shapes: Constants and integer shape values the cluster computes (Constant
            nodes, Shape/Size of tensors available outside, and integer math on those) that
            nodes outside also read are computed twice, by the engine and by a
            copy left outside, instead of becoming engine outputs: ONNX Runtime then folds
            them, as it needs to for a Loop's or Scan's state shapes, and TensorRT exports no
            host-side shape tensors.
    """
    members = set(part.nodes)
    node_outputs = index.node_outputs
    produced = {o for n in part.nodes for o in node_outputs[n] if o}
    inputs: dict[str, None] = {}
    constants: dict[str, None] = {}
    initializers, overridable, constant_nodes = (
        index.initializers, index.overridable, index.constant_nodes)
    for node in part.nodes:
        for name in index.node_inputs[node]:
            if name in produced:
                continue
            external_constant = (name in initializers and name not in overridable) or (
                name in constant_nodes and constant_nodes[name] not in members
            )
            (constants if external_constant else inputs)[name] = None
    model_outputs = set(index.graph_outputs)
    consumers = index.consumers
    outputs = [
        o for n in part.nodes for o in node_outputs[n]
        if o and (o in model_outputs or any(c not in members for c in consumers.get(o, ())))
    ]
    shared = _shared_shape_nodes(index, part, produced) if share_shapes else ()
    copied = {o for n in shared for o in node_outputs[n]}
    if shared and all(o in copied for o in outputs):
        shared, copied = (), set()  # an engine must compute something for the outside
    return ClusterIO(tuple(inputs), tuple(dict.fromkeys(o for o in outputs if o not in copied)),
                     tuple(constants), shared)


_RANDOM = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                     "Multinomial", "Bernoulli"})
_INTEGRAL = frozenset({TensorProto.BOOL, TensorProto.INT8, TensorProto.INT16, TensorProto.INT32,
                       TensorProto.INT64, TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32,
                       TensorProto.UINT64})


def _shared_shape_nodes(index: GraphIndex, part: Partition, produced: set[str]) -> tuple[int, ...]:
    """Members that compute integer shape values from what is available outside the cluster
    (or are Constant nodes), and whose values nodes outside read (with the members they need)."""
    members = set(part.nodes)
    shapes: set[str] = set()  # integer tensors holding shape values (or integer constants)
    computable: set[int] = set()  # members a copy outside could compute
    outside: set[str] = set()  # member outputs such a copy would make available
    for node in part.nodes:
        op_type, names = index.op_types[node], index.node_inputs[node]
        produces = index.node_outputs[node]
        constant = not names and op_type == "Constant"  # any type: it is a literal
        if op_type in _RANDOM or not (
                constant or all(index.dtype(o) in _INTEGRAL for o in produces if o)):
            continue  # not integral
        if op_type not in SHAPE_SOURCES and not all(
                n in shapes or n in index.constant_nodes
                or (n in index.initializers and n not in index.overridable) for n in names):
            continue  # not from shapes
        shapes.update(produces)
        if not _implicit(index.nodes[node]) and all(n not in produced or n in outside for n in names):
            computable.add(node)
            outside.update(produces)
    model_outputs = set(index.graph_outputs)
    wanted = [n for n in computable if any(
        o in model_outputs or any(c not in members for c in index.consumers.get(o, ()))
        for o in index.node_outputs[n])]
    needed: set[int] = set()
    while wanted:
        node = wanted.pop()
        if node not in needed:
            needed.add(node)
            wanted += [p for p in (index.producer.get(n) for n in index.node_inputs[node])
                       if p is not None and p in computable]
    return tuple(n for n in part.nodes if n in needed)


def _value_info(name: str, info: TensorInfo, dims: Sequence[int | str | None] | None) -> onnx.ValueInfoProto:
    return onnx.helper.make_tensor_value_info(name, info.dtype or 0, dims)


def _boundary_value(
    index: GraphIndex, name: str, ranges: Sequence[Mapping[str, Mapping[str, list[int]]]],
    inferred_dims: bool = True,
) -> onnx.ValueInfoProto:
    """A typed graph input/output; sequences, optionals and (for the runtime) model inputs keep
    their declared type."""
    declared = index.value_info(name)
    keep = not inferred_dims and name in index.graph_inputs
    if declared is not None and (keep or declared.type.WhichOneof("value") not in ("tensor_type", None)):
        value = onnx.ValueInfoProto()
        value.CopyFrom(declared)
        return value
    info = index.info(name)
    dims: Sequence[int | str | None] | None = None
    if ranges:
        dims = _boundary_dims(name, ranges)
    elif info.shape is not None:
        dims = info.shape if inferred_dims else [f"{name}_d{a}" for a in range(len(info.shape))]
    return _value_info(name, info, dims)


def _boundary_dims(name: str, ranges: Sequence[Mapping[str, Mapping[str, list[int]]]]) -> list[int | str] | None:
    """Static dims where every profile fixes them, named dynamic dims elsewhere."""
    if not ranges or name not in ranges[0]:
        return None
    lows = [r[name]["min"] for r in ranges]
    highs = [r[name]["max"] for r in ranges]
    dims: list[int | str] = []
    for axis in range(len(lows[0])):
        values = {lo[axis] for lo in lows} | {hi[axis] for hi in highs}
        dims.append(values.pop() if len(values) == 1 else f"{name}_d{axis}")
    return dims


def extract_subgraph(
    index: GraphIndex,
    part: Partition,
    io: ClusterIO,
    name: str,
    input_ranges: Sequence[Mapping[str, Mapping[str, list[int]]]],
    output_ranges: Sequence[Mapping[str, Mapping[str, list[int]]]],
    inferred_dims: bool = True,
    into: onnx.GraphProto | None = None,
) -> onnx.GraphProto:
    """The cluster as a self-contained graph: its nodes, copied weights and typed I/O.

    Boundary dims come from the shape ranges when given; otherwise from shape inference, or
    only the rank when ``inferred_dims`` is False (the runtime lets ONNX Runtime infer them).
    With ``into`` (an empty graph, such as a new model's), it is filled in place and returned:
    the weights are copied once.
    """
    initializers = []
    for const in io.constants:
        if const in index.initializers:
            initializers.append(index.initializers[const])
        else:
            value = index.constant_value(const)
            if value is None:
                raise InternalError(f"constant '{const}' has no value")
            initializers.append(numpy_helper.from_array(value, const))
    inputs = [_boundary_value(index, n, input_ranges, inferred_dims) for n in io.inputs]
    outputs = [_boundary_value(index, n, output_ranges, inferred_dims) for n in io.outputs]
    if into is None:
        return onnx.helper.make_graph(
            [index.nodes[n] for n in part.nodes], name, inputs, outputs, initializer=initializers
        )
    into.node.extend(index.nodes[n] for n in part.nodes)
    into.name = name
    into.input.extend(inputs)
    into.output.extend(outputs)
    into.initializer.extend(initializers)
    return into


def rewrite(
    index: GraphIndex,
    parts: Sequence[Partition],
    ios: Sequence[ClusterIO],
    records: Sequence[EngineRecord],
    metadata: Mapping[str, str],
) -> onnx.ModelProto:
    """Build the hybrid model: unclustered nodes as they were, each cluster as three nodes.

    Nodes keep their original relative order wherever the dependencies allow (a stable
    topological order of the contracted graph), so the same input gives the same output.
    """
    model = _without_graph(index.model)
    graph = model.graph  # filled in place: each node is copied once
    used = set(index.graph_outputs)  # what the new graph's nodes read, their bodies included

    def add(node: onnx.NodeProto) -> None:
        graph.node.append(node)
        used.update(node.input)
        if node.attribute:
            used.update(_implicit(node))

    for kind, key in contracted_order(index.deps, parts):
        if kind == "node":
            add(index.nodes[key])
        else:
            for node in _add_engine_nodes(graph, records[key], ios[key]):
                used.update(node.input)
            # shared copies read only what the cluster reads; they go after the engine, as an
            # engine's subgraph may not redefine a name its outer scope already defined
            for shared in ios[key].shared:
                add(index.nodes[shared])
    internal = _internal(index, parts, ios)
    graph.name = index.graph.name
    graph.input.extend(
        v for v in index.graph.input if v.name not in index.initializers or v.name in used)
    graph.output.extend(index.graph.output)
    graph.initializer.extend(t for t in index.graph.initializer if t.name in used)
    graph.value_info.extend(v for v in index.graph.value_info if v.name not in internal)
    if index.graph.doc_string:
        graph.doc_string = index.graph.doc_string
    # IR 3 demands every initializer be a graph input, engine subgraphs included; IR 4 lifted
    # that rule without changing what a model computes.
    model.ir_version = max(model.ir_version, 4)
    if not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(DOMAIN, FORMAT_VERSION))
    kept = [p for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in kept}, **metadata})
    return model


_MODEL_SCALARS = ("ir_version", "producer_name", "producer_version", "domain", "model_version",
                  "doc_string")
_MODEL_LISTS = ("opset_import", "metadata_props", "training_info", "functions", "configuration")


def _without_graph(source: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of every model field but the graph (the big part, replaced anyway)."""
    stripped = onnx.ModelProto()
    for name in _MODEL_SCALARS:
        setattr(stripped, name, getattr(source, name))
    for name in _MODEL_LISTS:
        if hasattr(source, name):
            getattr(stripped, name).extend(getattr(source, name))
    return stripped


def _implicit(node: onnx.NodeProto) -> list[str]:
    graphs = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    if node.domain == DOMAIN or not any(a.type in graphs for a in node.attribute):
        return []
    return outer_scope_inputs(node)


def _internal(index: GraphIndex, parts: Sequence[Partition], ios: Sequence[ClusterIO]) -> set[str]:
    names: set[str] = set()
    for part, io in zip(parts, ios):
        shared = set(io.shared)
        for node in part.nodes:
            if node not in shared:
                names.update(index.node_outputs[node])
    return names


def _add_engine_nodes(graph: onnx.GraphProto, record: EngineRecord, io: ClusterIO) -> list[onnx.NodeProto]:
    """Append ``combine -> tensorrt_engine -> split`` for one cluster to ``graph`` (made in
    place: the engine's subgraph is copied once) and return the three nodes."""
    packed_in, packed_out = f"{record.name}__inputs", f"{record.name}__outputs"
    made = [
        onnx.helper.make_node(COMBINE, list(io.inputs), [packed_in], name=f"{record.name}__combine",
                              domain=DOMAIN),
        onnx.helper.make_node(ENGINE, [packed_in], [packed_out], name=record.name, domain=DOMAIN),
        onnx.helper.make_node(SPLIT, [packed_out], list(io.outputs), name=f"{record.name}__split",
                              domain=DOMAIN),
    ]
    added = []
    for node in made:
        added.append(graph.node.add())
        added[-1].CopyFrom(node)
    add_engine_attributes(added[1], record)
    return added
