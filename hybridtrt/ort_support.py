"""Small shared facts about ONNX Runtime: the IR versions it reads, its error messages, and
sessions over models of any size."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx

from hybridtrt.core.external import externalized, is_large
from hybridtrt.core.references import inlined_model

__all__ = ["ORT_MAX_IR", "first_line", "ort_session", "runnable_bytes"]

ORT_MAX_IR = 13  # the newest IR version ONNX Runtime (1.31) reads


def runnable_bytes(model: onnx.ModelProto) -> bytes:
    """``model`` serialized with its IR version capped at what ONNX Runtime reads (the model
    itself is left as it is; weights left in their source file, ``core.references``, are read
    into a copy)."""
    inline = inlined_model(model)
    if inline.ir_version <= ORT_MAX_IR:
        return inline.SerializeToString()
    if inline is model:
        inline = onnx.ModelProto()
        inline.CopyFrom(model)
    inline.ir_version = ORT_MAX_IR
    return inline.SerializeToString()


def ort_session(model: onnx.ModelProto, options: Any, providers: Sequence[Any],
                outputs: Sequence[onnx.ValueInfoProto] = (), **kwargs: Any) -> Any:
    """An ONNX Runtime session over ``model``, also giving ``outputs`` (``kwargs`` go to
    ``InferenceSession``); ``model`` itself is left as it is.

    A model too large to serialize (``core.external.is_large``) is written to a temporary
    folder with its weights in an external data file, and the session made from that path.
    """
    import onnxruntime as ort

    if not is_large(model):
        if outputs:
            model = _with_outputs(model, outputs)
        return ort.InferenceSession(runnable_bytes(model), options, providers=list(providers),
                                    **kwargs)
    with tempfile.TemporaryDirectory(prefix="hybridtrt-ort-") as folder:
        path = Path(folder) / "model.onnx"
        skeleton = externalized(model, path.parent, "model.onnx.data")
        skeleton.ir_version = min(skeleton.ir_version, ORT_MAX_IR)
        skeleton.graph.output.extend(outputs)
        onnx.save_model(skeleton, str(path))
        del skeleton
        return ort.InferenceSession(str(path), options, providers=list(providers), **kwargs)


def _with_outputs(model: onnx.ModelProto, outputs: Sequence[onnx.ValueInfoProto]) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.graph.output.extend(outputs)
    return copy


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (ORT's messages run on for pages)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
