"""Side-file plans: an engine's serialized plan kept in a file next to the model (its
``engine_file`` attribute), read at load and confined to the model's folder."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

import onnx

from hybridtrt.core.format import EngineRecord, engine_nodes
from hybridtrt.errors import FormatError

__all__ = ["embed_side_plans", "side_plan_path"]


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
