"""An index over an ONNX graph: producers, consumers, node DAG, tensor types and constants."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from hybridtrt.core.partition import DependencyGraph
from hybridtrt.core.references import tensor_values
from hybridtrt.converters.registry import TensorInfo, Verdict, attribute_value
from hybridtrt.errors import UnsupportedModelError

__all__ = ["SHAPE_SOURCES", "GraphIndex", "in_topological_order", "outer_scope_inputs", "rename_reads",
           "tensor_info_from_value"]

SHAPE_SOURCES = frozenset({"Shape", "Size"})  # ops whose output is an input's shape



def tensor_info_from_value(value: onnx.ValueInfoProto, constant: bool = False) -> TensorInfo:
    """Turn a ValueInfoProto into a TensorInfo (dtype None for non-tensor values)."""
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return TensorInfo(value.name, None, None, constant, kind or "")
    tensor = value.type.tensor_type
    dtype = tensor.elem_type or None
    shape = _dims(tensor.shape.dim) if tensor.HasField("shape") else None
    return TensorInfo(value.name, dtype, shape, constant, kind)


def _dims(dims: Sequence[onnx.TensorShapeProto.Dimension]) -> tuple[int | str | None, ...]:
    """Sizes (None for a negative one), names, or None where neither is set."""
    shape: list[int | str | None] = []
    for d in dims:
        size = d.dim_value  # a size other than 0 is set: no HasField needed (most dims)
        if size > 0:
            shape.append(size)
        elif size < 0:
            shape.append(None)
        elif d.HasField("dim_value"):
            shape.append(0)
        else:
            shape.append(d.dim_param or None)
    return tuple(shape)


def rename_reads(node: onnx.NodeProto, rename: Mapping[str, str]) -> None:
    """Make ``node`` (and the bodies of its If/Loop/Scan) read the renamed tensors."""
    node.input[:] = [rename.get(n, n) for n in node.input]
    for attr in node.attribute:
        for body in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            for inner in body.node:
                rename_reads(inner, rename)


def outer_scope_inputs(node: onnx.NodeProto) -> list[str]:
    """Names a node's subgraphs read from the enclosing scope (implicit inputs), sorted."""
    found: set[str] = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for graph in graphs:
            found |= _free_names(graph)
    return sorted(found)


def in_topological_order(graph: onnx.GraphProto) -> bool:
    """Whether no node reads a value a later node writes (then ``GraphIndex.topo_order`` is
    the nodes as they are), found without indexing the graph."""
    producer = {name: k for k, node in enumerate(graph.node) for name in node.output if name}
    for k, node in enumerate(graph.node):
        names = [n for n in node.input if n]
        if node.attribute:
            names += outer_scope_inputs(node)
        if any(producer.get(n, k) > k for n in names):
            return False
    return True


def _free_names(graph: onnx.GraphProto) -> set[str]:
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(n for n in node.input if n)
        used.update(outer_scope_inputs(node))
        defined.update(node.output)
    used.update(v.name for v in graph.output)
    return used - defined


class GraphIndex:
    """Read-only facts about the main graph, by node index (position in ``graph.node``).

    Args:
        model: The model whose graph is indexed.
        inferred: The same model after shape inference, for tensor types (defaults to ``model``).
    """

    def __init__(self, model: onnx.ModelProto, inferred: onnx.ModelProto | None = None) -> None:
        self.model = model
        self.graph = model.graph
        self.nodes: Sequence[onnx.NodeProto] = model.graph.node
        self.opsets = {
            ("" if o.domain == "ai.onnx" else o.domain): int(o.version) for o in model.opset_import
        }
        self.initializers: dict[str, onnx.TensorProto] = {t.name: t for t in model.graph.initializer}
        self.graph_inputs = [v.name for v in model.graph.input if v.name not in self.initializers]
        self.graph_outputs = [v.name for v in model.graph.output]
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = {}
        self.node_inputs: list[list[str]] = []
        self.node_outputs: list[list[str]] = []  # as listed, "" for an omitted output
        self.op_types: list[str] = []
        constants = set()
        producer, consumers = self.producer, self.consumers
        # one pass over the protos: reading their fields again costs more than the lists
        for index, node in enumerate(self.nodes):
            names = [n for n in node.input if n]
            if node.attribute:
                names += outer_scope_inputs(node)
            outputs = list(node.output)
            op_type = node.op_type
            self.node_inputs.append(names)
            self.node_outputs.append(outputs)
            self.op_types.append(op_type)
            if op_type == "Constant" and node.domain in ("", "ai.onnx"):
                constants.add(index)
            for name in dict.fromkeys(names) if len(names) > 1 else names:
                consumers.setdefault(name, []).append(index)
            for name in outputs:
                if name:
                    producer[name] = index
        self._values = self._collect_values(inferred or model)
        self._infos: dict[str, TensorInfo] = {}
        self._dtypes: dict[str, int | None] = {}
        self.constant_nodes = {
            name: i for name, i in self.producer.items()
            if i in constants and _constant_node_value(self.nodes[i]) is not None
        }
        # From IR 4 on, an initializer that is also a graph input is only a default value the
        # caller may override: it is an input, not a constant.
        listed = {v.name for v in model.graph.input}
        self.overridable = (
            frozenset(n for n in self.initializers if n in listed) if model.ir_version >= 4
            else frozenset()
        )

    def _collect_values(self, model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
        graph = model.graph
        values: dict[str, onnx.ValueInfoProto] = {}
        for group in (graph.input, graph.value_info, graph.output):
            for value in group:
                values[value.name] = value
        return values

    def edges(self) -> list[tuple[int, int]]:
        """Node-to-node data dependencies (u, v): v reads an output of u; sorted, no repeats."""
        return self.deps.edge_list

    @cached_property
    def deps(self) -> DependencyGraph:
        """The node dependency graph (successor/predecessor lists)."""
        producer = self.producer
        pred = []
        for index, names in enumerate(self.node_inputs):
            sources = [p for p in map(producer.get, names) if p is not None and p != index]
            pred.append(sorted(set(sources)) if len(sources) > 1 else sources)
        return DependencyGraph.from_predecessors(pred)

    @cached_property
    def topo_order(self) -> list[int]:
        """A deterministic topological order (smallest node index first among ready nodes)."""
        order = _stable_toposort(self.deps)
        if len(order) != len(self.nodes):
            raise UnsupportedModelError(
                "the model graph has a cycle (a node depends on its own output); ONNX graphs "
                "must be acyclic"
            )
        return order

    @cached_property
    def position(self) -> list[int]:
        """``position[node] = rank in topo_order``."""
        pos = [0] * len(self.nodes)
        for rank, node in enumerate(self.topo_order):
            pos[node] = rank
        return pos

    def value_info(self, name: str) -> onnx.ValueInfoProto | None:
        """The declared or inferred ValueInfo of ``name`` (None when unknown)."""
        return self._values.get(name)

    def is_tensor_input(self, name: str) -> bool:
        """Whether graph input ``name`` is a tensor (not a sequence, map or optional)."""
        for value in self.graph.input:
            if value.name == name:
                return value.type.WhichOneof("value") in ("tensor_type", None)
        return False

    def info(self, name: str) -> TensorInfo:
        """What is known of tensor ``name`` (dtype, shape, constness)."""
        if not name:
            return TensorInfo("")
        cached = self._infos.get(name)
        if cached is None:
            cached = self._infos[name] = self._make_info(name)
        return cached

    def dtype(self, name: str) -> int | None:
        """``info(name).dtype``, without making the rest of the info (shapes cost most)."""
        if not name:
            return None
        cached = self._infos.get(name)
        if cached is not None:
            return cached.dtype
        if name not in self._dtypes:
            self._dtypes[name] = self._make_dtype(name)
        return self._dtypes[name]

    def dtypes(self) -> dict[str, int | None]:
        """``dtype`` of every tensor the graph declares, infers or holds as a weight, made in
        one pass (a name missing from it has dtype None)."""
        table: dict[str, int | None] = {}
        for name, value in self._values.items():
            kind = value.type.WhichOneof("value")
            table[name] = (value.type.tensor_type.elem_type or None) if kind == "tensor_type" else None
        for name, tensor in self.initializers.items():
            table[name] = int(tensor.data_type)
        return table

    def _make_dtype(self, name: str) -> int | None:
        tensor = self.initializers.get(name)
        if tensor is not None:
            return int(tensor.data_type)
        value = self._values.get(name)
        if value is None or value.type.WhichOneof("value") != "tensor_type":
            return None
        return value.type.tensor_type.elem_type or None

    def _make_info(self, name: str) -> TensorInfo:
        tensor = self.initializers.get(name)
        if tensor is not None:
            return TensorInfo(name, tensor.data_type, tuple(tensor.dims), name not in self.overridable)
        constant = name in self.constant_nodes
        value = self._values.get(name)
        if value is None:
            return TensorInfo(name, None, None, constant)
        return tensor_info_from_value(value, constant)

    def shape_kinds(self, names: Sequence[str]) -> tuple[frozenset[str], frozenset[str]]:
        """(static, ranked): the ``names`` whose every dim ``info`` knows as a number, and those
        whose rank it knows; read from the protos without making an info for each tensor."""
        static: list[str] = []
        ranked: list[str] = []
        for name in names:
            known = self._infos.get(name)
            tensor = self.initializers.get(name) if known is None else None
            if known is not None or tensor is not None:
                shape = known.shape if known is not None else tuple(tensor.dims)  # type: ignore[union-attr]
                if shape is not None:
                    ranked.append(name)
                    if all(isinstance(d, int) for d in shape):
                        static.append(name)
                continue
            value = self._values.get(name)
            if (value is None or value.type.WhichOneof("value") != "tensor_type"
                    or not value.type.tensor_type.HasField("shape")):
                continue
            ranked.append(name)
            for d in value.type.tensor_type.shape.dim:
                if d.dim_value <= 0 and not (d.dim_value == 0 and d.HasField("dim_value")):
                    break  # a name, an unknown or a negative size
            else:
                static.append(name)
        return frozenset(static), frozenset(ranked)

    def constant_value(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant output (None for anything computed)."""
        if name in self.initializers and name not in self.overridable:
            return tensor_values(self.initializers[name])  # a reference: read from its file
        index = self.constant_nodes.get(name)
        if index is None:
            return None
        return _constant_node_value(self.nodes[index])

    def context(self, index: int, verdict_of_subgraph: Any = None) -> NodeContextImpl:
        return NodeContextImpl(self, index, verdict_of_subgraph)


_CONSTANT_DTYPES = {"value_float": np.float32, "value_floats": np.float32,
                    "value_int": np.int64, "value_ints": np.int64}


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray | None:
    """A Constant node's value with ONNX's dtypes (float32 / int64 for the scalar forms)."""
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in _CONSTANT_DTYPES:
            return np.array(onnx.helper.get_attribute_value(attr), dtype=_CONSTANT_DTYPES[attr.name])
    return None  # sparse and string constants are not folded into engines


def _stable_toposort(graph: DependencyGraph) -> list[int]:
    if all(not sources or sources[-1] < node for node, sources in enumerate(graph.pred)):
        return list(range(graph.count))  # every edge points forward (ONNX asks for this order)
    successors = graph.succ
    indegree = [len(p) for p in graph.pred]
    ready = [i for i in range(graph.count) if indegree[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for nxt in successors[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(ready, nxt)
    return order


class NodeContextImpl:
    """The compiler's NodeContext: what a support rule may ask about one node."""

    def __init__(self, index: GraphIndex, node_index: int, subgraph_judge: Any = None) -> None:
        self._index = index
        self.node = index.nodes[node_index]
        domain = "" if self.node.domain == "ai.onnx" else self.node.domain
        self.opset = index.opsets.get(domain, 1)
        self._judge = subgraph_judge

    def input(self, index: int) -> TensorInfo:
        if index >= len(self.node.input):
            return TensorInfo("")
        return self._index.info(self.node.input[index])

    def output(self, index: int) -> TensorInfo:
        if index >= len(self.node.output):
            return TensorInfo("")
        return self._index.info(self.node.output[index])

    def constant_value(self, index: int) -> np.ndarray | None:
        if index >= len(self.node.input) or not self.node.input[index]:
            return None
        return self._index.constant_value(self.node.input[index])

    def attr(self, name: str, default: Any = None) -> Any:
        return attribute_value(self.node, name, default)

    def subgraph_verdict(self, graph: onnx.GraphProto) -> Verdict:
        if self._judge is None:
            return Verdict.no("control-flow bodies are not checked here")
        verdict: Verdict = self._judge(graph, self._index.opsets)
        return verdict
