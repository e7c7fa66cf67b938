"""Which TensorRT library this process builds and runs with: NVIDIA TensorRT or TensorRT-RTX.

Both have the same Python API shape (``tensorrt`` and ``tensorrt_rtx``). The modules that call
TensorRT take the module bound here, so one process uses one library; the first backend loaded
binds it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from types import ModuleType

from hybridtrt.errors import InternalError

__all__ = ["LIBRARIES", "RTX", "TENSORRT", "bind", "bound", "bound_name", "installed", "label",
           "resolve", "rules_library"]

TENSORRT = "tensorrt"
RTX = "tensorrt_rtx"
LIBRARIES = (TENSORRT, RTX)
"""Module names, in the order ``auto`` prefers them."""

_LABELS = {TENSORRT: "TensorRT", RTX: "TensorRT-RTX"}
_LOCK = threading.Lock()
_BOUND: list[ModuleType] = []


def label(name: str) -> str:
    """The library's name as people write it ("TensorRT-RTX")."""
    return _LABELS.get(name, name)


def resolve(backend: str) -> tuple[str, str]:
    """The library ``backend`` means here, or "" and why there is none.

    ``auto``: ``$HYBRIDTRT_BACKEND`` when set (a library, or ``none``), else the library this
    process already uses, else TensorRT when installed, else TensorRT-RTX.
    """
    if backend != "auto":
        return (backend, "") if installed(backend) else ("", f"{backend} is not installed")
    chosen = os.environ.get("HYBRIDTRT_BACKEND", "").strip()
    if chosen == "none":
        return "", "TensorRT is turned off (HYBRIDTRT_BACKEND=none)"
    if chosen:
        if chosen not in LIBRARIES:
            return "", (f"HYBRIDTRT_BACKEND={chosen} names no TensorRT library (one of "
                        f"{', '.join(LIBRARIES)} or none)")
        return resolve(chosen)
    found = bound_name() or next((n for n in LIBRARIES if installed(n)), "")
    if not found:
        return "", ("TensorRT is not installed (pip install tensorrt-cu13, or tensorrt-rtx-cu13 "
                    "for TensorRT-RTX)")
    return found, ""


def rules_library(backend: str) -> str:
    """The library whose capability rules apply to ``backend`` (even when not installed)."""
    return resolve(backend)[0] or (backend if backend != "auto" else TENSORRT)


def installed(name: str) -> bool:
    """Whether the library's module can be found (not whether it loads)."""
    return importlib.util.find_spec(name) is not None


def bind(name: str) -> ModuleType:
    """Import library ``name`` and make it this process's TensorRT.

    Raises:
        ValueError: Another library is bound already (the message names both).
        ImportError, OSError: The library does not load (a broken install).
    """
    if name not in LIBRARIES:
        raise InternalError(f"unknown TensorRT library {name!r}")
    with _LOCK:
        if _BOUND:
            if _BOUND[0].__name__ != name:
                raise ValueError(f"this process already uses {_BOUND[0].__name__}; {name} can "
                                 "only be used in a new process")
            return _BOUND[0]
        module = importlib.import_module(name)
        _BOUND.append(module)
        return module


def bound_name() -> str:
    """The bound library's module name ("" before any backend was loaded)."""
    return _BOUND[0].__name__ if _BOUND else ""


def bound() -> ModuleType:
    """The bound library (the TensorRT-calling modules import after ``bind``)."""
    if not _BOUND:
        raise InternalError("a TensorRT module was imported before a library was bound")
    return _BOUND[0]
