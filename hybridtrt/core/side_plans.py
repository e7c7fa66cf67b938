"""Side-file plans: an engine's serialized plan kept in a file next to the model (its
``engine_file`` attribute), read at load and confined to the model's folder; ``save`` puts
plans there when the model file would otherwise pass protobuf's 2 GiB limit."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

import onnx

from hybridtrt.core.format import DOMAIN, ENGINE, EngineRecord, engine_nodes
from hybridtrt.errors import FormatError

__all__ = ["PLANS_APART_ABOVE", "embed_side_plans", "is_plan", "place_plans", "side_plan_path",
           "side_plan_names"]

PLANS_APART_ABOVE = (1 << 31) - (1 << 26)  # bytes of a model file (protobuf's limit: 2 GiB)


def side_plan_path(record: EngineRecord, folder: Path) -> Path:
    """Where ``record``'s plan lives: ``engine_file`` under ``folder`` (the model's).

    Raises:
        FormatError: The path is absolute, climbs out with ``..``, resolves out of ``folder``
            (a symlink), or names no regular file; or the node also embeds a plan.
    """
    name = record.engine_file
    where = f"engine '{record.name}': its plan file {name!r}"
    if record.engine:
        raise FormatError(f"{where} is given but the node embeds a plan too; keep one of them")
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or Path(name).is_absolute() or ".." in relative.parts:
        raise FormatError(f"{where} must be a path inside the model's folder {folder} "
                          "(relative, without '..')")
    path = folder.joinpath(*relative.parts)
    root, real = folder.resolve(), path.resolve()
    if not real.is_relative_to(root):
        raise FormatError(f"{where} resolves to {real}, outside the model's folder {root} "
                          "(symlinks out of it are refused)")
    if not real.is_file():
        raise FormatError(f"{where}: no such file at {path} (it must sit next to the model)")
    return real


def embed_side_plans(model: onnx.ModelProto, records: tuple[EngineRecord, ...],
                     folder: Path) -> bool:
    """Read every side-file plan into its engine node (``engine`` set, ``engine_file`` cleared),
    each checked against the node's ``engine_sha256`` as embedded plans are, so the model in
    memory is whole; whether any was read (then make the records again)."""
    records_by_name = {r.name: r for r in records if r.engine_file}
    files = {name: side_plan_path(r, folder) for name, r in records_by_name.items()}
    for node in engine_nodes(model.graph):
        if node.name not in files:
            continue
        plan = _read(node.name, files[node.name], records_by_name[node.name].engine_sha256)
        for attribute in node.attribute:
            if attribute.name == "engine":
                attribute.s = plan
            elif attribute.name == "engine_file":
                attribute.s = b""
        if not any(a.name == "engine" for a in node.attribute):
            node.attribute.append(onnx.helper.make_attribute("engine", plan))
    return bool(files)


def _read(engine: str, path: Path, sha256: str) -> bytes:
    try:
        plan = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"engine '{engine}': cannot read its plan file {path}: "
                          f"{exc.strerror}") from exc
    if hashlib.sha256(plan).hexdigest() != sha256:
        raise FormatError(f"engine '{engine}': its plan file {path} fails its checksum "
                          "(engine_sha256); the file was modified or belongs to another model")
    return plan


def is_plan(node: onnx.NodeProto, attribute: onnx.AttributeProto) -> bool:
    """Whether ``attribute`` is an engine node's plan (``externalized`` leaves it out for
    ``place_plans``)."""
    return node.domain == DOMAIN and node.op_type == ENGINE and attribute.name == "engine"


def place_plans(model: onnx.ModelProto, skeleton: onnx.ModelProto, folder: Path,
                stem: str) -> list[str]:
    """Give ``skeleton`` (``model`` about to be written, weights external, plans left out by
    ``is_plan``) the plans of ``model``'s engine nodes: inside, or when the model file would
    pass ``PLANS_APART_ABOVE`` with them, in ``<stem>.<engine_sha256 prefix>.plan`` files in
    ``folder``, the node naming its file in ``engine_file``; the names written. Each plan is
    read from ``model`` and written alone. Names come from checksums, never from the nodes'
    names (which a file may choose)."""
    found = _plan_lengths(model)
    apart = _file_size(skeleton, found) > PLANS_APART_ABOVE
    written: list[str] = []
    for k, lengths in found.items():
        original, node = model.graph.node[k], skeleton.graph.node[k]
        attrs = {a.name: a for a in node.attribute}
        positions = [j for j, a in enumerate(node.attribute) if a.name == "engine"]
        for j, length in zip(positions, lengths):
            if not length:
                continue
            if not (apart and j == positions[-1] and "engine_file" in attrs):
                node.attribute[j].s = original.attribute[j].s
                continue
            name = f"{stem}.{attrs['engine_sha256'].s.decode('ascii', 'replace')[:16]}.plan"
            if name not in written:
                (folder / name).write_bytes(original.attribute[j].s)
                written.append(name)
            attrs["engine_file"].s = name.encode()
    return written


def _plan_lengths(model: onnx.ModelProto) -> dict[int, list[int]]:
    """Per engine node (its index), the length of each of its plans (each read alone: one
    plan's copy at a time; protobuf tells no length without one)."""
    found: dict[int, list[int]] = {}
    for k, node in enumerate(model.graph.node):
        lengths = [len(a.s) for a in node.attribute if is_plan(node, a)]
        if lengths:
            found[k] = lengths
    return found


def _file_size(skeleton: onnx.ModelProto, found: dict[int, list[int]]) -> int:
    """The size of ``skeleton`` serialized with plans of the lengths ``found`` in its (empty)
    plan attributes: each message grows by its field's growth, and its length prefix by as
    many bytes as the varint takes more (protobuf's encoding, exact)."""
    graph_growth = 0
    for k, lengths in found.items():
        node = skeleton.graph.node[k]
        empty = [a.ByteSize() for a in node.attribute if a.name == "engine"]
        whole = [left + length + _varint(length) - 1 if length else left
                 for left, length in zip(empty, lengths)]  # (s: a tag, a length, the bytes)
        before = node.ByteSize()
        after = before + sum(w - left + _varint(w) - _varint(left)
                             for left, w in zip(empty, whole))
        graph_growth += after - before + _varint(after) - _varint(before)
    graph = skeleton.graph.ByteSize()
    return (skeleton.ByteSize() + graph_growth + _varint(graph + graph_growth)
            - _varint(graph))


def _varint(value: int) -> int:
    """The bytes protobuf's varint of ``value`` takes."""
    return max(1, (value.bit_length() + 6) // 7)


def side_plan_names(model: onnx.ModelProto) -> set[str]:
    """The plan files (plain names, in the model's folder) ``model``'s engine nodes name."""
    names = set()
    for node in engine_nodes(model.graph):
        for attribute in node.attribute:
            value = attribute.s.decode("utf-8", "replace")
            if attribute.name == "engine_file" and value and value == Path(value).name:
                names.add(value)
    return names
