"""The HybridModel: a converted model in memory, saved atomically and loaded back with checks."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import filelock
import onnx
from google.protobuf.message import DecodeError, EncodeError

from hybridtrt.core.external import externalized, is_large
from hybridtrt.core.loading import read_onnx_file
from hybridtrt.core.references import inlined_model
from hybridtrt.core.report import Report, engine_summary, name_order
from hybridtrt.core import side_plans
from hybridtrt.core.side_plans import embed_side_plans, place_plans, side_plan_names
from hybridtrt.errors import FormatError, SaveError
from hybridtrt.core.format import (
    FORMAT_VERSION,
    META_REPORT,
    EngineRecord,
    engine_nodes,
    format_version,
    metadata,
    stamp_graph_digest,
    verify_graph_digest,
)

__all__ = ["HybridModel", "load"]

_EXTERNAL_ABOVE = 1 << 30  # bytes; protobuf cannot hold more than 2 GiB
_DEFAULT_NAME = "model.onnx"


class HybridModel:
    """A hybrid ONNX model: ORT nodes plus ``tensorrt_engine`` nodes wrapped by combine/split.

    Converted from (or loaded from) a file over 2 GiB, its large weights stay in the data file
    they were read from (``core.references``), which must stay in place while it is used.

    Args:
        model: The hybrid ModelProto (as made by ``convert`` or read by ``load``).
        stage_seconds: How long each ``convert`` stage took (empty for a loaded model).
    """

    def __init__(self, model: onnx.ModelProto, stage_seconds: dict[str, float] | None = None) -> None:
        self.model = model
        self.stage_seconds = dict(stage_seconds or {})
        self._engines = tuple(EngineRecord.from_node(n) for n in engine_nodes(model.graph))
        names = [e.name for e in self._engines]
        if len(set(names)) != len(names):
            raise FormatError(f"engine node names are not unique: {names}")

    @property
    def engines(self) -> tuple[EngineRecord, ...]:
        """The engine records in graph order."""
        return self._engines

    def report(self) -> Report:
        """The partition report: op table, reasons, engines with their profiles and status."""
        stored = metadata(self.model).get(META_REPORT)
        if stored is None:
            raise FormatError("this hybrid model carries no report (metadata hybridtrt.report)")
        try:
            base = Report.from_dict(json.loads(stored))
        except (ValueError, KeyError, TypeError) as exc:
            raise FormatError(f"the stored report (metadata {META_REPORT}) is malformed: {exc!r}") from exc
        engines = tuple(engine_summary(e) for e in sorted(self._engines,
                                                           key=lambda e: name_order(e.name)))
        return dataclasses.replace(base, engines=engines)

    def save(self, path: str | os.PathLike[str], *, external_data: bool | None = None) -> Path:
        """Write the model as ONNX, atomically: either the whole new file appears, or nothing.

        Args:
            path: Target ``.onnx`` file, or a directory (``model.onnx`` is written in it).
            external_data: Store weights in ``<name>.data`` next to the file; by default only
                when the model is over 1 GiB (a model over 2 GiB cannot be saved without).

        Returns:
            The path of the written ``.onnx`` file.

        Raises:
            SaveError: The place cannot be written (the message says why).
        """
        target = Path(path)
        if target.is_dir() or (not target.suffix and not target.exists()):
            target = target / _DEFAULT_NAME
        large = is_large(self.model)
        if external_data is False and large:
            raise SaveError(f"cannot write the hybrid model to {target} without external data: "
                            "it is over protobuf's 2 GiB limit (leave external_data unset)")
        _refuse_special(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with filelock.FileLock(str(_lock_path(target))):
                _refuse_special(target)
                stale = _data_files_of(target)
                prefix = f".hybridtrt-{target.name}-"
                _remove_leftovers(target.parent, prefix)  # of saves to this path that were killed
                metadata_size = _metadata_size(self.model)  # before the digest is stamped in
                with tempfile.TemporaryDirectory(prefix=prefix, dir=target.parent) as tmp, \
                        _stamped(self.model):  # load verifies every weight against the digest
                    staged = Path(tmp) / target.name
                    written = self._write(staged, large, external_data, metadata_size)
                    for name in written:  # the data file, then side-file plans
                        os.chmod(Path(tmp) / name, stat.S_IMODE(staged.stat().st_mode))
                        os.replace(Path(tmp) / name, target.parent / name)
                    os.replace(staged, target)  # the model file appears last, whole
                for name in stale - set(written):
                    (target.parent / name).unlink(missing_ok=True)
        except EncodeError as exc:  # what stays in the .onnx file is over 2 GiB
            raise SaveError(f"cannot write the hybrid model to {target}: what is kept in the "
                            ".onnx file besides the weights and plans is over protobuf's "
                            "2 GiB limit") from exc
        except (OSError, ValueError) as exc:
            raise SaveError(f"cannot write the hybrid model to {target}: {exc}") from exc
        return target


    def _write(self, staged: Path, large: bool, external_data: bool | None,
               metadata_size: int) -> list[str]:
        """Serialize to ``staged``; return the names of the files written beside it (the data
        file, and plan files when the model file would pass 2 GiB with its plans inside).

        By default the weights go to a data file when the model is over 1 GiB (its size as it
        was before the digest was stamped in, told by the bytes serialized here, which are
        written when they stay inline). The data file is named after its content, so saving
        over an older model never leaves the old model file next to new data (or the
        reverse) if the process dies in between.
        """
        external = large if external_data is None else external_data
        if external:
            return self._write_external(staged)
        model = inlined_model(self.model)  # weights left in their source file read in (< 2 GiB)
        inline = _inline_bytes(model)
        if external_data is None:
            size = len(inline) if inline is not None else model.ByteSize()
            if size - _metadata_size(model) + metadata_size > _EXTERNAL_ABOVE:  # fields'
                return self._write_external(staged)  # sizes add up: the size unstamped
        if inline is None:
            onnx.save_model(model, str(staged))
        else:
            staged.write_bytes(inline)
        return []

    def _write_external(self, staged: Path) -> list[str]:
        staging = f"{staged.name}.staging.data"
        skeleton = externalized(self.model, staged.parent, staging, 1024, side_plans.is_plan)
        plans = place_plans(self.model, skeleton, staged.parent, staged.name)  # inside or apart
        tensors = [t for t in onnx.external_data_helper._get_all_tensors(skeleton)  # noqa: SLF001
                   if t.data_location == onnx.TensorProto.EXTERNAL]
        if not tensors:
            onnx.save_model(skeleton, str(staged))
            return plans
        # The skeleton names every weight by checksum (graph_sha256, each engine's digests).
        digest = hashlib.sha256(skeleton.SerializeToString(deterministic=True)).hexdigest()[:16]
        data_name = f"{staged.name}.{digest}.data"
        for tensor in tensors:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = data_name
        os.replace(staged.parent / staging, staged.parent / data_name)
        onnx.save_model(skeleton, str(staged))
        return [data_name, *plans]


def _inline_bytes(model: onnx.ModelProto) -> bytes | None:
    """``model`` serialized as ``onnx.save_model`` would write it; None when a tensor says its
    data is external (``save_model`` writes those to their files first) or protobuf cannot
    serialize it (over 2 GiB: ``save_model`` says so)."""
    helper = onnx.external_data_helper
    if any(helper.uses_external_data(t) for t in helper._get_all_tensors(model)):  # noqa: SLF001
        return None
    try:
        return model.SerializeToString()
    except (ValueError, EncodeError):
        return None


def _metadata_size(model: onnx.ModelProto) -> int:
    """The bytes the model's metadata takes in its serialization."""
    return onnx.ModelProto(metadata_props=model.metadata_props).ByteSize()


@contextlib.contextmanager
def _stamped(model: onnx.ModelProto) -> Iterator[None]:
    """``model`` with its graph digest in the metadata while it is written; as before after."""
    before = [(p.key, p.value) for p in model.metadata_props]
    stamp_graph_digest(model)
    try:
        yield
    finally:
        del model.metadata_props[:]
        for key, value in before:
            model.metadata_props.add(key=key, value=value)


def _remove_leftovers(folder: Path, prefix: str) -> None:
    """Staging folders a killed save to the same path left behind (its lock is held now)."""
    for left in folder.glob(f"{glob.escape(prefix)}*"):
        if left.is_dir() and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)


def _lock_path(target: Path) -> Path:
    """A lock file for saves to ``target``, kept out of the user's folder."""
    digest = hashlib.sha256(str(target.resolve()).encode()).hexdigest()[:32]
    folder = Path(tempfile.gettempdir()) / "hybridtrt-save-locks"
    folder.mkdir(exist_ok=True)
    return folder / f"{digest}.lock"


def _refuse_special(target: Path) -> None:
    """Refuse to replace a symlink, device, FIFO or socket with a regular file."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SaveError(f"cannot write the hybrid model to {target}: {exc}") from exc
    if not stat.S_ISREG(mode):
        raise SaveError(
            f"cannot write the hybrid model to {target}: it exists and is not a regular file "
            "(a symlink, device, FIFO or directory); give the path of a regular .onnx file"
        )


def _data_files_of(target: Path) -> set[str]:
    """Names of the external data and plan files (in the target's folder) the model now at
    ``target`` reads."""
    try:
        old = onnx.load(str(target), load_external_data=False)
    except (OSError, ValueError, DecodeError):
        return set()
    names = side_plan_names(old)
    for tensor in onnx.external_data_helper._get_all_tensors(old):  # noqa: SLF001
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        for entry in tensor.external_data:
            if entry.key == "location" and entry.value == Path(entry.value).name:
                names.add(entry.value)
    return names


def load(path: str | os.PathLike[str], *, verify: bool = True) -> HybridModel:
    """Read a saved hybrid model and verify it.

    Args:
        path: The ``.onnx`` file (its external data is read from next to it; a model over
            2 GiB keeps its large weights there, read when a session or a save needs them).
        verify: Check the whole graph and every weight against the checksum saved with them
            (False: trust the file; engine subgraphs and plans are still checked).

    Raises:
        ModelLoadError: The file is missing or not ONNX.
        FormatError: It is not a hybrid model, it was written by a newer format version, an
            embedded subgraph or a plan fails its checksum, or a plan's side file
            (``engine_file``) is missing or outside the model's folder.
    """
    model = read_onnx_file(path, references=True)  # over 2 GiB: weights left in the data file
    if model.ir_version > onnx.IR_VERSION:
        raise FormatError(
            f"{path} has IR version {model.ir_version}; the installed onnx {onnx.__version__} "
            f"reads up to {onnx.IR_VERSION}: upgrade onnx"
        )
    version = format_version(model)
    if version is None:
        raise FormatError(f"{path} is a plain ONNX model, not a hybridtrt model; convert it first")
    if version > FORMAT_VERSION:
        raise FormatError(
            f"{path} uses hybrid format version {version}; this hybridtrt reads up to "
            f"{FORMAT_VERSION}: upgrade hybridtrt"
        )
    hybrid = HybridModel(model)  # engine records first: their errors name the field
    for engine in hybrid.engines:
        engine.verify()
    if verify:
        verify_graph_digest(model, str(path))
    if embed_side_plans(model, hybrid.engines, Path(path).parent):
        hybrid = HybridModel(model)  # (the records again, now with those plans)
    return hybrid
