"""The hybrid ONNX format: op names, attributes, versioning and checksums (see docs/FORMAT.md)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
from onnx import numpy_helper

from hybridtrt.errors import FormatError
from hybridtrt.core.external import node_without
from hybridtrt.core.format_schema import check_record, check_subgraph
from hybridtrt.core.references import hash_values, is_reference, tensor_values

__all__ = [
    "COMBINE",
    "DOMAIN",
    "ENGINE",
    "FORMAT_VERSION",
    "META_FORMAT",
    "META_GRAPH_SHA256",
    "META_REPORT",
    "META_VERSION",
    "SPLIT",
    "EngineRecord",
    "PlanBytes",
    "add_engine_attributes",
    "format_version",
    "subgraph_digest",
]

DOMAIN = "hybridtrt"
FORMAT_VERSION = 1
COMBINE = "combine"
ENGINE = "tensorrt_engine"
SPLIT = "split"
META_FORMAT = "hybridtrt.format_version"
META_VERSION = "hybridtrt.version"
META_REPORT = "hybridtrt.report"
META_GRAPH_SHA256 = "hybridtrt.graph_sha256"

STATUS_NOT_BUILT = "not_built"
STATUS_BUILT = "built"


def subgraph_digest(graph: onnx.GraphProto, name: str | None = None) -> str:
    """SHA-256 of a subgraph's structure and weight values, independent of how weights are stored.

    Every tensor (initializers, attribute tensors, tensors of nested control-flow bodies) is
    rewritten from its values before hashing, so the digest is the same whether weights sit
    inline or in an external data file, and whatever encoding (raw or typed fields) they use.
    ``name``, when given, is hashed in place of the graph's name.
    """
    # Hashed field by field, in field-number order, one initializer at a time: the same bytes
    # as serializing the canonical graph whole, without copying its weights (or 2 GiB limits).
    digest = hashlib.sha256()
    head, tail = onnx.GraphProto(), onnx.GraphProto()
    for field, value in graph.ListFields():
        if field.name == "initializer":
            continue
        part = head if field.number < _INITIALIZER_FIELD else tail
        if field.is_repeated:
            getattr(part, field.name).extend(value)
        elif field.message_type is not None:
            getattr(part, field.name).CopyFrom(value)
        else:
            setattr(part, field.name, value)
    if name is not None:
        head.name = name
    _canonical_tensors(head)  # attribute tensors and nested bodies
    digest.update(head.SerializeToString(deterministic=True))
    for tensor in graph.initializer:
        one = onnx.GraphProto()
        one.initializer.add().CopyFrom(tensor)
        _canonical_tensor(one.initializer[0])
        digest.update(one.SerializeToString(deterministic=True))
    digest.update(tail.SerializeToString(deterministic=True))
    return digest.hexdigest()


_INITIALIZER_FIELD = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number


def _canonical_tensors(graph: onnx.GraphProto) -> None:
    for tensor in graph.initializer:
        _canonical_tensor(tensor)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                _canonical_tensor(attr.t)
            for tensor in attr.tensors:
                _canonical_tensor(tensor)
            if attr.HasField("g"):
                _canonical_tensors(attr.g)
            for body in attr.graphs:
                _canonical_tensors(body)


def _canonical_tensor(tensor: onnx.TensorProto) -> None:
    try:
        value = tensor_values(tensor)  # a reference is read from its file
    except (ValueError, TypeError, OSError) as exc:
        raise FormatError(f"tensor '{tensor.name}' cannot be read: {exc}") from exc
    tensor.CopyFrom(numpy_helper.from_array(value, tensor.name))


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class PlanBytes:
    """Where an engine's serialized plan is held, once: its bytes (or a file the engine stage
    wrote them to) until they are copied into their engine node (``add_engine_attributes``),
    that node's ``engine`` attribute after.

    A full plan is the size of its weights; a copy in the record beside the one in the node
    would double them (protobuf cannot share bytes with Python, and reads give copies).
    """

    __slots__ = ("_data", "_attribute", "_file")

    def __init__(self, data: bytes = b"", attribute: onnx.AttributeProto | None = None,
                 file: Path | None = None) -> None:
        self._data = data
        self._attribute = attribute
        self._file = file

    @property
    def data(self) -> bytes:
        """The plan (read from its node or its file, when it is held there: a copy)."""
        if self._attribute is not None:
            return self._attribute.s
        return self._file.read_bytes() if self._file is not None else self._data

    def held_by(self, attribute: onnx.AttributeProto) -> None:
        """The plan's bytes are now in ``attribute`` (a copy): read them there from now on."""
        self._attribute, self._data, self._file = attribute, b"", None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlanBytes) and (self is other or self.data == other.data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        where = ("in its engine node" if self._attribute is not None
                 else f"in {self._file}" if self._file is not None else "bytes")
        return f"PlanBytes({where})"


@dataclasses.dataclass(frozen=True)
class EngineRecord:
    """Everything a ``tensorrt_engine`` node carries.

    Attributes:
        name: Node name (unique in the model).
        subgraph: The cluster as a self-contained ONNX graph (weights included).
        subgraph_sha256: ``subgraph_digest(subgraph)`` at conversion.
        profiles: One ``{input name: {"min","opt","max"}}`` per optimization profile.
        output_shapes: Recorded ranges of the outputs, per profile (for reports).
        build_settings: Precision, workspace and optimization level used for the build.
        status: ``"not_built"`` or ``"built"``.
        status_reason: Why the engine is not built (empty when built).
        plan: Where the serialized TensorRT plan is held (``engine`` reads it).
        engine_file: Side file of the plan, relative to the model file ("" when embedded).
        engine_sha256: SHA-256 of the plan bytes ("" when not built).
        fingerprint: TensorRT version, GPU compute capability and settings hash of the plan.
        precision: The precision written into the subgraph: ``{"mode", "fp32_nodes": [[name,
            op type, reason], ...]}`` plus ``quantization``/``quantize_nodes`` for INT8.
    """

    name: str
    subgraph: onnx.GraphProto
    subgraph_sha256: str
    profiles: tuple[dict[str, dict[str, list[int]]], ...]
    output_shapes: tuple[dict[str, dict[str, list[int]]], ...]
    build_settings: dict[str, Any]
    status: str = STATUS_NOT_BUILT
    status_reason: str = ""
    plan: PlanBytes = dataclasses.field(default_factory=PlanBytes)
    engine_file: str = ""
    engine_sha256: str = ""
    fingerprint: dict[str, Any] = dataclasses.field(default_factory=dict)
    precision: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def engine(self) -> bytes:
        """The serialized TensorRT plan (empty when not built or kept in a side file)."""
        return self.plan.data

    @property
    def input_names(self) -> list[str]:
        return [v.name for v in self.subgraph.input]

    @property
    def output_names(self) -> list[str]:
        return [v.name for v in self.subgraph.output]

    @staticmethod
    def from_node(node: onnx.NodeProto) -> EngineRecord:
        """Parse an engine node, checking its attributes (raises FormatError)."""
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute
                 if a.name != "engine"}  # (the plan: read where it is, when it is needed)
        missing = [k for k in ("subgraph", "subgraph_sha256", "profiles", "build_settings")
                   if k not in attrs]
        if missing:
            raise FormatError(f"engine node '{node.name}' lacks attribute(s) {missing}")
        if not isinstance(attrs["subgraph"], onnx.GraphProto):
            raise FormatError(f"engine node '{node.name}': attribute 'subgraph' is not a graph")
        try:
            return EngineRecord._parse(node, attrs)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FormatError(f"engine node '{node.name}' has malformed attributes: {exc!r}") from exc

    @staticmethod
    def _parse(node: onnx.NodeProto, attrs: dict[str, Any]) -> EngineRecord:
        plans = [a for a in node.attribute if a.name == "engine"]
        if plans and plans[-1].type != onnx.AttributeProto.STRING:
            raise TypeError("attribute 'engine' is not a string")
        profiles = json.loads(_text(attrs["profiles"]))
        settings = json.loads(_text(attrs["build_settings"]))
        fingerprint = json.loads(_text(attrs.get("fingerprint", b"{}")))
        precision = json.loads(_text(attrs.get("precision", b"{}")))
        for field, value in (("profiles", profiles), ("build_settings", settings),
                             ("fingerprint", fingerprint), ("precision", precision)):
            check_record(node.name, field, value)
        check_subgraph(node.name, attrs["subgraph"], DOMAIN)
        return EngineRecord(
            name=node.name,
            subgraph=attrs["subgraph"],
            subgraph_sha256=_text(attrs["subgraph_sha256"]),
            profiles=tuple(p["inputs"] for p in profiles),
            output_shapes=tuple(p.get("outputs", {}) for p in profiles),
            build_settings=settings,
            status=_text(attrs.get("status", STATUS_NOT_BUILT.encode())),
            status_reason=_text(attrs.get("status_reason", b"")),
            plan=PlanBytes(attribute=plans[-1]) if plans else PlanBytes(),
            engine_file=_text(attrs.get("engine_file", b"")),
            engine_sha256=_text(attrs.get("engine_sha256", b"")),
            fingerprint=fingerprint,
            precision=precision,
        )

    def verify(self) -> None:
        """Raise FormatError when the embedded subgraph no longer matches its checksum."""
        actual = subgraph_digest(self.subgraph)
        if actual != self.subgraph_sha256:
            raise FormatError(
                f"engine '{self.name}': its embedded subgraph does not match its checksum "
                "(the file was modified or corrupted); convert the original model again"
            )
        plan = self.engine  # (read once: a copy of a plan held in its node)
        if plan and hashlib.sha256(plan).hexdigest() != self.engine_sha256:
            raise FormatError(f"engine '{self.name}': the serialized engine fails its checksum")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def add_engine_attributes(node: onnx.NodeProto, record: EngineRecord) -> None:
    """Give a ``tensorrt_engine`` node the attributes of ``record``, in a fixed order.

    The subgraph and the plan are copied straight into the node (made apart and then added,
    they would be copied twice); the record reads its plan from the node after.
    """
    profiles = [
        {"inputs": inputs, "outputs": outputs}
        for inputs, outputs in zip(record.profiles, record.output_shapes)
    ]
    subgraph = node.attribute.add(name="subgraph", type=onnx.AttributeProto.GRAPH)
    subgraph.g.CopyFrom(record.subgraph)
    for name, value in (
        ("subgraph_sha256", record.subgraph_sha256),
        ("profiles", _canonical_json(profiles)),
        ("build_settings", _canonical_json(record.build_settings)),
        ("status", record.status),
        ("status_reason", record.status_reason),
        ("engine", record.engine),
        ("engine_file", record.engine_file),
        ("engine_sha256", record.engine_sha256),
        ("fingerprint", _canonical_json(record.fingerprint)),
        ("precision", _canonical_json(record.precision)),
    ):  # what make_attribute makes of a string, added in place (a plan is copied once)
        added = node.attribute.add(name=name, type=onnx.AttributeProto.STRING,
                                   s=value if isinstance(value, bytes) else value.encode("utf-8"))
        if name == "engine":
            record.plan.held_by(added)


def format_version(model: onnx.ModelProto) -> int | None:
    """The hybrid format version written in the model's metadata, or None for a plain model."""
    keys = [p.key for p in model.metadata_props]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise FormatError(f"metadata key(s) {duplicates} appear more than once")
    for prop in model.metadata_props:
        if prop.key == META_FORMAT:
            value = prop.value
            if not (value.isascii() and value.isdigit() and value == str(int(value or "0")) and int(value) > 0):
                raise FormatError(
                    f"metadata {META_FORMAT}={value!r} is not a positive integer version"
                )
            return int(value)
    return None


def graph_digest(graph: onnx.GraphProto) -> str:
    """SHA-256 of the main graph: its structure, then each initializer's name, type, dims and
    bytes. An engine node counts by its ``subgraph_sha256`` and ``engine_sha256`` attributes
    (``EngineRecord.verify`` checks its subgraph and plan against them; where the plan is
    kept, in the node or in an ``engine_file``, does not count)."""
    digest = hashlib.sha256()
    structure = onnx.GraphProto()
    structure.name, structure.doc_string = graph.name, graph.doc_string
    for field in ("input", "output", "value_info", "sparse_initializer"):
        getattr(structure, field).extend(getattr(graph, field))
    for node in graph.node:
        if node.domain == DOMAIN and node.op_type == ENGINE:  # these carry their own checksums
            stub = node_without(node, ("subgraph", "engine"))
            for attribute in stub.attribute:  # a plan counts the same embedded or in a side file
                if attribute.name == "engine_file":
                    attribute.s = b""
            structure.node.append(stub)
        else:
            structure.node.append(node)
    _canonical_tensors(structure)  # attribute tensors, whether stored inline or outside
    digest.update(structure.SerializeToString(deterministic=True))
    for tensor in sorted(graph.initializer, key=lambda t: t.name):
        digest.update(f"|{tensor.name}|{tensor.data_type}|{list(tensor.dims)}|".encode())
        if is_reference(tensor):  # the bytes it would hold inline, read a chunk at a time
            hash_values(tensor, digest)
        else:
            digest.update(tensor.raw_data if tensor.HasField("raw_data")
                          else numpy_helper.to_array(tensor).tobytes())
    return digest.hexdigest()


def stamp_graph_digest(model: onnx.ModelProto) -> None:
    """Write ``subgraph_digest`` of the whole main graph (every weight, every engine) into the
    model's metadata, replacing an older one."""
    digest = graph_digest(model.graph)
    kept = [p for p in model.metadata_props if p.key != META_GRAPH_SHA256]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=META_GRAPH_SHA256, value=digest)


def verify_graph_digest(model: onnx.ModelProto, source: str) -> None:
    """Raise FormatError when the main graph no longer matches the digest saved with it (files
    written before it was recorded carry none and pass)."""
    stored = metadata(model).get(META_GRAPH_SHA256)
    if stored is not None and graph_digest(model.graph) != stored:
        raise FormatError(f"{source}: its graph or weights do not match the checksum saved with "
                          "them (the file was modified or corrupted); convert the original "
                          "model again, or load(..., verify=False) to read it anyway")


def metadata(model: onnx.ModelProto) -> Mapping[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def engine_nodes(graph: onnx.GraphProto) -> Sequence[onnx.NodeProto]:
    return [n for n in graph.node if n.domain == DOMAIN and n.op_type == ENGINE]
