"""Small shared facts about ONNX Runtime: the IR versions it reads, and its error messages."""

from __future__ import annotations

import onnx

__all__ = ["ORT_MAX_IR", "first_line", "runnable_bytes"]

ORT_MAX_IR = 13  # the newest IR version ONNX Runtime (1.31) reads


def runnable_bytes(model: onnx.ModelProto) -> bytes:
    """``model`` serialized with its IR version capped at what ONNX Runtime reads (the model
    itself is left as it is)."""
    if model.ir_version <= ORT_MAX_IR:
        return model.SerializeToString()
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.ir_version = min(copy.ir_version, ORT_MAX_IR)
    return copy.SerializeToString()


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (ORT's messages run on for pages)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
