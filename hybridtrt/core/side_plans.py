"""Side-file plans: an engine's serialized plan kept in a file next to the model (its
``engine_file`` attribute), read at load and confined to the model's folder; ``save`` puts
plans there when the model file would otherwise pass protobuf's 2 GiB limit."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

import onnx

from hybridtrt.core.format import EngineRecord, engine_nodes
from hybridtrt.errors import FormatError

__all__ = ["PLANS_APART_ABOVE", "embed_side_plans", "plans_apart", "side_plan_path",
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


def plans_apart(skeleton: onnx.ModelProto, folder: Path, stem: str) -> list[str]:
    """Move every embedded plan of ``skeleton`` (a model about to be written, weights already
    external) into ``<stem>.<engine_sha256 prefix>.plan`` in ``folder``, its node naming the
    file in ``engine_file``; the names written. Names come from checksums, never from the
    nodes' names (which a file may choose)."""
    written: list[str] = []
    for node in engine_nodes(skeleton.graph):
        attrs = {a.name: a for a in node.attribute}
        plan = attrs.get("engine")
        if plan is None or not plan.s or "engine_file" not in attrs:
            continue
        name = f"{stem}.{attrs['engine_sha256'].s.decode('ascii', 'replace')[:16]}.plan"
        if name not in written:
            (folder / name).write_bytes(plan.s)
            written.append(name)
        plan.s = b""
        attrs["engine_file"].s = name.encode()
    return written


def side_plan_names(model: onnx.ModelProto) -> set[str]:
    """The plan files (plain names, in the model's folder) ``model``'s engine nodes name."""
    names = set()
    for node in engine_nodes(model.graph):
        for attribute in node.attribute:
            value = attribute.s.decode("utf-8", "replace")
            if attribute.name == "engine_file" and value and value == Path(value).name:
                names.add(value)
    return names
