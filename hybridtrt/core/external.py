"""Models over protobuf's 2 GiB: their size without serializing them, a weightless copy for
shape inference and checks, and writing them with every large tensor in one data file."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import onnx
from google.protobuf.message import Message
from onnx import TensorProto, numpy_helper

from hybridtrt.core.references import inlined, is_reference, stream_values

__all__ = ["LARGE_ABOVE", "SMALL_ELEMENTS", "externalized", "is_large", "light_model", "node_without",
           "tensor_bytes"]

# Models whose tensors hold more bytes than this are handled as over protobuf's 2 GiB limit
# (the rest of the model is allowed 64 MiB). Module-level so tests can lower it.
LARGE_ABOVE = 2**31 - 2**26
SMALL_ELEMENTS = 4096  # initializers up to this many elements keep their values in ``light_model``
_STANDARD = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")


def tensor_bytes(tensor: TensorProto) -> int:
    """The bytes of a tensor's values, from its dims and type (its data is not read)."""
    if tensor.data_type == TensorProto.STRING:
        return sum(len(s) for s in tensor.string_data)
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
    except KeyError:  # a type ONNX does not define (refused where the tensor is read)
        return len(tensor.raw_data)
    return math.prod(tensor.dims) * dtype.itemsize


def _graph_bytes(graph: onnx.GraphProto) -> int:
    total = sum(tensor_bytes(t) for t in graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            total += sum(tensor_bytes(t) for t in ([attr.t] if attr.HasField("t") else []))
            total += sum(tensor_bytes(t) for t in attr.tensors)
            total += sum(_graph_bytes(g) for g in ([attr.g] if attr.HasField("g") else []))
            total += sum(_graph_bytes(g) for g in attr.graphs)
    return total


def is_large(model: onnx.ModelProto | onnx.GraphProto) -> bool:
    """Whether the model (or graph) is too large to serialize as one protobuf message."""
    graph = model.graph if isinstance(model, onnx.ModelProto) else model
    return _graph_bytes(graph) > LARGE_ABOVE


def node_without(node: onnx.NodeProto, dropped: Sequence[str]) -> onnx.NodeProto:
    """A copy of ``node`` without the attributes named ``dropped`` (never copied)."""
    stub = onnx.NodeProto()
    for field, value in node.ListFields():
        if field.name == "attribute":
            stub.attribute.extend(a for a in value if a.name not in dropped)
        elif field.is_repeated:
            getattr(stub, field.name).extend(value)
        else:
            setattr(stub, field.name, value)
    return stub


def light_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with each large initializer turned into a typed graph input: the same types
    and shapes for ONNX shape inference and the checker, without copying weights (small
    initializers, such as a Reshape's target shape, keep their values). Nodes outside the
    standard domains (a hybrid model's engines) lose their graph attributes: ONNX has no
    inference for them."""
    graph = model.graph
    nodes = [node if node.domain in _STANDARD else node_without(
        node, [a.name for a in node.attribute if a.HasField("g") or a.graphs])
        for node in graph.node]
    small = [t for t in graph.initializer if math.prod(t.dims) <= SMALL_ELEMENTS]
    listed = {v.name for v in graph.input}
    weights = [onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
               for t in graph.initializer if math.prod(t.dims) > SMALL_ELEMENTS and t.name not in listed]
    light = onnx.helper.make_model(
        onnx.helper.make_graph(nodes, graph.name, [*graph.input, *weights], graph.output,
                               small, value_info=graph.value_info),
        opset_imports=model.opset_import, ir_version=model.ir_version)
    light.functions.extend(model.functions)
    return light


class _Sink:
    """Copies a model into a skeleton in place, writing tensors over ``threshold`` bytes into one
    data file (the skeleton keeps stubs naming them)."""

    def __init__(self, data: BinaryIO, location: str, threshold: int,
                 left_out: Callable[[onnx.NodeProto, onnx.AttributeProto], bool] | None) -> None:
        self.data = data
        self.location = location
        self.threshold = threshold
        self.left_out = left_out
        self.offset = 0

    def tensor(self, tensor: TensorProto, into: TensorProto) -> None:
        reference = is_reference(tensor)
        if reference and tensor_bytes(tensor) < self.threshold:
            into.CopyFrom(inlined(tensor))  # read from the file
            return
        if not reference and (tensor.data_type == TensorProto.STRING
                              or tensor_bytes(tensor) < self.threshold
                              or tensor.data_location == TensorProto.EXTERNAL):
            into.CopyFrom(tensor)
            return
        into.name, into.data_type = tensor.name, tensor.data_type
        into.doc_string = tensor.doc_string  # (set even when empty, as the stub always had it)
        into.dims.extend(tensor.dims)
        into.data_location = TensorProto.EXTERNAL
        start = self.offset
        if reference:  # streamed from the source data file, a chunk at a time
            self.offset = start + stream_values(tensor, self.data)
        else:
            values = (tensor.raw_data if tensor.HasField("raw_data")
                      else numpy_helper.to_array(tensor).tobytes())
            self.data.write(values)
            self.offset = start + len(values)
        for key, value in (("location", self.location), ("offset", str(start)),
                           ("length", str(self.offset - start))):
            into.external_data.add(key=key, value=value)

    def graph(self, graph: onnx.GraphProto, into: onnx.GraphProto) -> None:
        _copy_fields(graph, into, {"initializer": self.tensor, "node": self.node})

    def node(self, node: onnx.NodeProto, into: onnx.NodeProto) -> None:
        left_out = self.left_out
        if left_out is None:
            _copy_fields(node, into, {"attribute": self.attribute})
            return

        def attribute(attr: onnx.AttributeProto, out: onnx.AttributeProto) -> None:
            if left_out(node, attr):
                _without_bytes(attr, out)
            else:
                self.attribute(attr, out)

        _copy_fields(node, into, {"attribute": attribute})

    def attribute(self, attr: onnx.AttributeProto, into: onnx.AttributeProto) -> None:
        _copy_fields(attr, into, {"t": self.tensor, "tensors": self.tensor, "g": self.graph,
                                  "graphs": self.graph})


def _copy_fields(source: Message, target: Message, special: dict[str, Callable]) -> None:
    """Copy every set field of ``source`` into ``target``; those in ``special`` through it,
    made in place (a message made apart and then added would be copied twice: an engine
    node's plan, its subgraph)."""
    for field, value in source.ListFields():
        make = special.get(field.name)
        if make is None:
            if field.is_repeated:
                getattr(target, field.name).extend(value)
            elif field.message_type is not None:
                getattr(target, field.name).CopyFrom(value)
            else:
                setattr(target, field.name, value)
        elif field.is_repeated:
            for item in value:
                make(item, getattr(target, field.name).add())
        else:
            child = getattr(target, field.name)
            child.SetInParent()  # (present even when it stays empty, as CopyFrom made it)
            make(value, child)


def _without_bytes(attr: onnx.AttributeProto, out: onnx.AttributeProto) -> None:
    """``attr`` copied into ``out`` but for its string ``s`` (never read), left empty."""
    for field in attr.DESCRIPTOR.fields:
        if field.name == "s":
            continue
        if field.is_repeated:
            getattr(out, field.name).extend(getattr(attr, field.name))
        elif attr.HasField(field.name):
            if field.message_type is not None:
                getattr(out, field.name).CopyFrom(getattr(attr, field.name))
            else:
                setattr(out, field.name, getattr(attr, field.name))
    if attr.HasField("s"):
        out.s = b""


def externalized(model: onnx.ModelProto, folder: Path, data_name: str, threshold: int = 1024,
                 left_out: Callable[[onnx.NodeProto, onnx.AttributeProto], bool] | None = None
                 ) -> onnx.ModelProto:
    """A copy of ``model`` whose tensors of ``threshold`` bytes or more (initializers, attribute
    tensors, those of nested graphs) are written to ``folder/data_name`` and read from there;
    one tensor is copied at a time (a reference, ``core.references``, streamed from its file).
    No data file is left when no tensor is that large. Attributes ``left_out(node, attribute)``
    picks keep an empty ``s`` (their bytes, a plan, are written elsewhere or added later)."""
    path = folder / data_name
    with open(path, "wb") as data:
        sink = _Sink(data, data_name, threshold, left_out)
        skeleton = onnx.ModelProto()
        _copy_fields(model, skeleton, {"graph": sink.graph})
    if sink.offset == 0:
        path.unlink()
    return skeleton
