"""Stage 1: read an ONNX model from a path or a ModelProto, with clear errors, and infer types."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from hybridtrt.core.external import SMALL_ELEMENTS, is_large, light_model
from hybridtrt.core.format import DOMAIN
from hybridtrt.core.references import escapes_folder, is_reference, keep_as_reference
from hybridtrt.errors import ModelLoadError
from hybridtrt.ort_support import first_line

__all__ = ["LoadedModel", "load_model", "read_onnx_file"]

_LOG = logging.getLogger("hybridtrt")


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A checked model, its weights in memory, and a shape-inferred copy for type lookups.

    Attributes:
        model: The model as given (weights loaded, never mutated by later stages).
        inferred: The model after ONNX shape inference (value_info filled where possible); for
            a model over 2 GiB, of ``core.external.light_model`` (large weights as inputs).
        source: Where it came from (a path, or "<ModelProto>").
        opsets: Opset version per domain ("" is the default domain).
    """

    model: onnx.ModelProto
    inferred: onnx.ModelProto
    source: str
    opsets: dict[str, int]


def read_onnx_file(path: str | os.PathLike[str], *, load_weights: bool = True,
                   references: bool = False) -> onnx.ModelProto:
    """Parse an ONNX file into a ModelProto, turning every failure into ModelLoadError.

    With ``references``, a model over 2 GiB (``core.external.is_large``) keeps its large
    external initializers in their data file (``core.references``); all else is read in.
    """
    file = Path(path)
    if not file.exists():
        raise ModelLoadError(f"model file not found: {file}")
    if not file.is_file():
        raise ModelLoadError(f"not a file: {file} (give the path of an .onnx file)")
    try:
        model = onnx.load(str(file), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise ModelLoadError(
            f"{file} is not a valid ONNX model (not ONNX, or truncated): {exc}"
        ) from exc
    except OSError as exc:
        raise ModelLoadError(f"cannot read {file}: {exc}") from exc
    if not model.HasField("graph") or not model.opset_import:
        raise ModelLoadError(f"{file} is not a valid ONNX model: it has no graph or no opset")
    if load_weights:
        _refuse_outside_data(model, file)
        if references and is_large(model):
            _keep_references(model, file.parent)
        try:
            _load_external_data(model, file.parent)
        except (OSError, ValueError, onnx.checker.ValidationError) as exc:
            raise ModelLoadError(
                f"{file}: cannot read its external weight data next to it: {exc}"
            ) from exc
    return model


def _external_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Initializers and tensor attributes (subgraphs included) that keep data outside."""
    for tensor in graph.initializer:
        if onnx.external_data_helper.uses_external_data(tensor):
            yield tensor
    for node in graph.node:
        for attr in node.attribute:
            tensors = [attr.t] if attr.HasField("t") else list(attr.tensors)
            yield from (t for t in tensors if onnx.external_data_helper.uses_external_data(t))
            for body in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _external_tensors(body)


def _keep_references(model: onnx.ModelProto, folder: Path) -> None:
    """Leave the large external initializers of the main graph and of a hybrid model's engine
    subgraphs in their file, as references (control-flow bodies are read in)."""
    graphs = [model.graph] + [a.g for n in model.graph.node if n.domain == DOMAIN
                              for a in n.attribute if a.HasField("g")]
    for tensor in (t for g in graphs for t in g.initializer):
        if (onnx.external_data_helper.uses_external_data(tensor)
                and math.prod(tensor.dims) > SMALL_ELEMENTS):
            keep_as_reference(tensor, folder.absolute())


def _load_external_data(model: onnx.ModelProto, folder: Path) -> None:
    """Read in every external tensor but the references (as onnx's own loader would)."""
    for tensor in onnx.external_data_helper._get_all_tensors(model):  # noqa: SLF001
        if onnx.external_data_helper.uses_external_data(tensor) and not is_reference(tensor):
            onnx.external_data_helper.load_external_data_for_tensor(tensor, str(folder))


def _refuse_outside_data(model: onnx.ModelProto, file: Path) -> None:
    """External weight files must be regular files in the model's folder (or below it): a
    symlink or a path out of it could make a saved model carry any file of this machine."""
    for tensor in _external_tensors(model.graph):
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if escapes_folder(file.parent, location):
            raise ModelLoadError(f"{file}: weight '{tensor.name}' reads external data "
                                 f"{location!r}, which is not a file inside the model's folder "
                                 "(symlinks and paths out of it are refused)")


def load_model(model: onnx.ModelProto | str | os.PathLike[str]) -> LoadedModel:
    """Stage 1 of ``convert``: read, version-check, validate and shape-infer the model.

    Args:
        model: A path to an ``.onnx`` file (external data next to it is read) or a ModelProto
            (read, never modified).

    Raises:
        ModelLoadError: The file is missing, not ONNX, truncated, invalid, or too new.
    """
    if isinstance(model, onnx.ModelProto):
        source = "<ModelProto>"
        proto = model  # read only: no stage modifies it (tests check the caller's bytes)
    elif isinstance(model, (str, os.PathLike)):
        source = str(model)
        proto = read_onnx_file(model, references=True)  # over 2 GiB: weights left in file
    else:
        raise ModelLoadError(
            f"convert() takes a path or an onnx.ModelProto, got {type(model).__name__}"
        )
    opsets = _check_versions(proto, source)
    checked = light_model(proto) if is_large(proto) else proto  # protobuf's 2 GiB
    _check_valid(checked, source)
    inferred = _infer(checked, source)
    _LOG.info(
        "loaded %s: %d nodes, opset %s, IR %d",
        source, len(proto.graph.node), opsets.get("", "-"), proto.ir_version,
    )
    return LoadedModel(model=proto, inferred=inferred, source=source, opsets=opsets)


def _check_versions(model: onnx.ModelProto, source: str) -> dict[str, int]:
    if model.ir_version > onnx.IR_VERSION:
        raise ModelLoadError(
            f"{source} has IR version {model.ir_version}; the installed onnx {onnx.__version__} "
            f"reads up to {onnx.IR_VERSION}: upgrade onnx"
        )
    opsets = {("" if o.domain == "ai.onnx" else o.domain): int(o.version) for o in model.opset_import}
    newest = onnx.defs.onnx_opset_version()
    if opsets.get("", 0) > newest:
        raise ModelLoadError(
            f"{source} uses opset {opsets['']} of the default domain; the installed onnx "
            f"{onnx.__version__} knows up to opset {newest}: upgrade onnx"
        )
    return opsets


def _check_valid(model: onnx.ModelProto, source: str) -> None:
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{source} is not a valid ONNX model: {first_line(exc)}") from exc


def _infer(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError) as exc:
        _LOG.warning("ONNX shape inference failed on %s (%s); types may be unknown", source, exc)
        return model
