"""Real models that installed packages ship, for demos, docs and tests (nothing is downloaded)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import onnx

from hybridtrt.errors import ModelLoadError

__all__ = ["onnx_light_model", "paddleocr_model"]

_PADDLEOCR_PATTERNS = {"det": "*det*.onnx", "rec": "*rec*.onnx", "cls": "*cls*.onnx"}


def onnx_light_model(name: str = "resnet50") -> Path:
    """A real CNN architecture shipped in the onnx wheel (resnet50, densenet121, squeezenet...).

    Raises:
        ModelLoadError: The installed onnx wheel does not ship it.
    """
    folder = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    path = folder / f"light_{name}.onnx"
    if not path.exists():
        shipped = sorted(p.stem.removeprefix("light_") for p in folder.glob("light_*.onnx"))
        raise ModelLoadError(f"the onnx wheel ships no '{name}' model; it has {shipped}")
    return path


def paddleocr_model(kind: str = "det") -> Path:
    """A PaddleOCR model (``det``, ``rec`` or ``cls``) from the rapidocr_onnxruntime wheel.

    The environment variable ``PADDLEOCR_MODELS_DIR`` may name a folder of copies instead
    (for machines without rapidocr).

    Raises:
        ModelLoadError: rapidocr_onnxruntime is not installed or ships no such model.
    """
    if kind not in _PADDLEOCR_PATTERNS:
        raise ModelLoadError(f"PaddleOCR model kind must be det, rec or cls, got '{kind}'")
    copies = os.environ.get("PADDLEOCR_MODELS_DIR")
    if copies:
        found = sorted(Path(copies).glob(_PADDLEOCR_PATTERNS[kind]))
        if not found:
            raise ModelLoadError(f"PADDLEOCR_MODELS_DIR={copies} holds no '{kind}' model")
        return found[0]
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("the PaddleOCR models come with rapidocr_onnxruntime: "
                             "pip install rapidocr-onnxruntime")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    found = sorted(folder.glob(_PADDLEOCR_PATTERNS[kind]))
    if not found:
        raise ModelLoadError(f"rapidocr_onnxruntime ships no '{kind}' model in {folder}")
    return found[0]
