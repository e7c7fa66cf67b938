"""Weights left in the source model's data file while a model over 2 GiB is converted: tensors
that name the folder they are read from, read back one at a time when a value, a checksum, a
session or a save needs them (protobuf's Python messages cannot share weights between the
loaded model, the engine subgraphs and the hybrid model, so each would hold a copy)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from hybridtrt.errors import ModelLoadError

__all__ = ["FOLDER_KEY", "escapes_folder", "has_references", "hash_values", "inlined",
           "inlined_model", "is_reference", "keep_as_reference", "parser_input", "stream_values",
           "tensor_values"]

FOLDER_KEY = "hybridtrt.folder"  # an external_data entry: the folder ``location`` is read in
_TRUSTED: set[str] = set()  # folders whose references the loader checked (see keep_as_reference)
_CHUNK = 1 << 24  # bytes read at a time when streaming a tensor


def escapes_folder(folder: Path, location: str) -> bool:
    """Whether ``location`` is not a file path inside ``folder`` (absolute, with "..", or
    through a symlink): such data could make a saved model carry any file of this machine."""
    parts = Path(location).parts
    if not parts or Path(location).is_absolute() or ".." in parts:
        return True
    return any(folder.joinpath(*parts[:k]).is_symlink() for k in range(1, len(parts) + 1))


def keep_as_reference(tensor: TensorProto, folder: Path) -> None:
    """Mark an external tensor (its location checked by the loader) as read from ``folder``."""
    _TRUSTED.add(str(folder))
    tensor.external_data.add(key=FOLDER_KEY, value=str(folder))


def is_reference(tensor: TensorProto) -> bool:
    """Whether ``tensor`` is a weight left in its source data file (``keep_as_reference``)."""
    return tensor.data_location == TensorProto.EXTERNAL and any(
        e.key == FOLDER_KEY for e in tensor.external_data)


def _entries(tensor: TensorProto) -> dict[str, str]:
    return {e.key: e.value for e in tensor.external_data}


def _open(tensor: TensorProto) -> tuple[BinaryIO, int]:
    """The tensor's data file positioned at its bytes, and how many bytes it has."""
    entries = _entries(tensor)
    folder, location = entries[FOLDER_KEY], entries.get("location", "")
    if folder not in _TRUSTED:
        raise ModelLoadError(f"weight '{tensor.name}' reads external data from {folder!r}, "
                             "which no model was loaded from; load the model from its file")
    if escapes_folder(Path(folder), location):
        raise ModelLoadError(f"weight '{tensor.name}' reads external data {location!r}, which "
                             f"is not a file inside {folder} (symlinks and paths out of it are "
                             "refused)")
    try:
        handle = os.fdopen(os.open(Path(folder) / location, os.O_RDONLY | os.O_NOFOLLOW), "rb")
    except OSError as exc:
        raise ModelLoadError(f"weight '{tensor.name}': cannot read its data file "
                             f"{location!r} in {folder}: {exc}") from exc
    size = os.fstat(handle.fileno()).st_size
    try:
        offset = int(entries.get("offset", 0))
        length = int(entries["length"]) if "length" in entries else size - offset
    except ValueError:
        offset = length = -1
    if min(offset, length) < 0 or offset + length > size:
        handle.close()
        raise ModelLoadError(f"weight '{tensor.name}': its data file {location!r} in {folder} "
                             f"does not hold the bytes its offset and length name ({size} bytes)")
    handle.seek(offset)
    return handle, length


def _chunks(tensor: TensorProto) -> Iterator[bytes]:
    handle, left = _open(tensor)
    with handle:
        while left > 0:
            chunk = handle.read(min(left, _CHUNK))
            if not chunk:
                raise ModelLoadError(f"weight '{tensor.name}': its data file ended early")
            left -= len(chunk)
            yield chunk


def stream_values(tensor: TensorProto, sink: BinaryIO) -> int:
    """Copy a reference's bytes into ``sink`` a chunk at a time; return how many were copied."""
    return sum(sink.write(chunk) for chunk in _chunks(tensor))


def hash_values(tensor: TensorProto, digest: "hashlib._Hash") -> None:
    """Feed a reference's bytes (its ``raw_data`` were it inline) into ``digest``."""
    for chunk in _chunks(tensor):
        digest.update(chunk)


def inlined(tensor: TensorProto) -> TensorProto:
    """``tensor`` itself, or for a reference a copy holding its values (as if loaded inline)."""
    if not is_reference(tensor):
        return tensor
    handle, length = _open(tensor)
    with handle:
        values = handle.read(length)  # one read: one transient copy besides the tensor's
    if len(values) != length:
        raise ModelLoadError(f"weight '{tensor.name}': its data file ended early")
    out = TensorProto()
    out.CopyFrom(tensor)
    out.raw_data = values
    out.data_location = TensorProto.DEFAULT
    del out.external_data[:]
    return out


def tensor_values(tensor: TensorProto) -> np.ndarray:
    """``numpy_helper.to_array`` of ``tensor``, a reference's values read from its file."""
    return numpy_helper.to_array(inlined(tensor))


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[TensorProto]:
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for body in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _graph_tensors(body)


def has_references(model: onnx.ModelProto | onnx.GraphProto) -> bool:
    """Whether any tensor of the model (nested graphs included) is a reference."""
    graph = model.graph if isinstance(model, onnx.ModelProto) else model
    return any(is_reference(t) for t in _graph_tensors(graph))


def inlined_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` itself, or a copy with every reference's values read in (for ONNX Runtime or
    TensorRT given bytes: under 2 GiB, the copy lasts as long as the caller keeps it)."""
    if not has_references(model):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)  # references are small: the copy holds only the inline weights
    for tensor in _graph_tensors(out.graph):
        if is_reference(tensor):
            tensor.CopyFrom(inlined(tensor))
    return out


def parser_input(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str | None]:
    """What TensorRT's parser is given for ``model``: the model, and a path in the folder its
    references are read from (None without references), the references made plain external
    data (TensorRT reads ``location`` relative to that path's folder)."""
    folders = {_entries(t)[FOLDER_KEY] for t in _graph_tensors(model.graph) if is_reference(t)}
    if not folders:
        return model, None
    if len(folders) > 1:  # one model is read from one folder; inline what comes from others
        return inlined_model(model), None
    folder = folders.pop()
    plain = onnx.ModelProto()
    plain.CopyFrom(model)
    for tensor in _graph_tensors(plain.graph):
        if is_reference(tensor):
            _open(tensor)[0].close()  # the same checks as a read
            kept = [e for e in tensor.external_data if e.key != FOLDER_KEY]
            del tensor.external_data[:]
            tensor.external_data.extend(kept)
    return plain, str(Path(folder) / "model.onnx")
