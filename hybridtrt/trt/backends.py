"""Choosing and loading the TensorRT backend: the one door to the modules that call TensorRT."""

from __future__ import annotations

from hybridtrt.trt import library as libraries
from hybridtrt.trt.api import TrtBackend

__all__ = ["load_backend"]


def load_backend(library: str = "auto") -> tuple[TrtBackend | None, str]:
    """The real TensorRT backend, or None and the reason it cannot be had.

    Args:
        library: ``"tensorrt"``, ``"tensorrt_rtx"`` or ``"auto"``: ``$HYBRIDTRT_BACKEND`` when
            set (``tensorrt``, ``tensorrt_rtx``, or ``none`` for no TensorRT at all), else the
            library this process already uses, else TensorRT when installed, else TensorRT-RTX.
    """
    name, reason = libraries.resolve(library)
    if not name:
        return None, reason
    try:
        libraries.bind(name)
        from hybridtrt.trt.tensorrt_backend import TensorRTBackend  # once a library is bound

        return TensorRTBackend(), ""
    except ValueError as exc:
        return None, str(exc)
    except (ImportError, OSError, AttributeError) as exc:
        # A stub package or a broken install (e.g. PyPI's tensorrt-cu12 without NVIDIA's libraries)
        return None, f"{name} cannot be loaded: {exc}"
