"""Real models that installed packages ship, for demos, docs and tests (nothing is downloaded)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import onnx

from hybridtrt.errors import ModelLoadError

__all__ = ["ctc_decode", "det_input", "onnx_light_model", "paddleocr_model", "rec_input",
           "render_text"]

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



def render_text(lines: list[str], size: tuple[int, int] | None = None, font_size: int = 32,
                seed: int = 0) -> np.ndarray:
    """Dark text on a light background, drawn with Pillow's default font (HxWx3 uint8).

    Args:
        lines: The text, one entry per line.
        size: (height, width) of a page with the lines spread over it; None gives a tight
            single-line crop (the recognizer's input).
        font_size: Glyph size in pixels.
        seed: Varies the page layout and the shades.
    """
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=font_size)
    paper, ink = int(rng.integers(215, 256)), int(rng.integers(0, 60))
    if size is None:
        left, top, right, bottom = font.getbbox(lines[0])
        image = Image.new("RGB", (int(right) + 16, font_size + 16), (paper,) * 3)
        ImageDraw.Draw(image).text((8, 8 - top // 2), lines[0], font=font, fill=(ink,) * 3)
    else:
        height, width = size
        image = Image.new("RGB", (width, height), (paper,) * 3)
        draw = ImageDraw.Draw(image)
        step = max(height // (len(lines) + 1), font_size + 4)
        for k, line in enumerate(lines):
            x = int(rng.integers(4, max(5, width // 6)))
            draw.text((x, 8 + k * step), line, font=font, fill=(ink,) * 3)
    return np.asarray(image)


def rec_input(image: np.ndarray, width: int = 320, height: int = 48) -> np.ndarray:
    """PaddleOCR recognizer preprocessing: resize to ``height`` keeping the aspect ratio (at
    most ``width``), scale to [-1, 1], pad right to ``width``; 1x3xHxW float32."""
    from PIL import Image

    ratio = image.shape[1] / image.shape[0]
    resized_w = min(width, max(1, int(round(height * ratio))))
    resized = np.asarray(Image.fromarray(image).resize((resized_w, height)), np.float32)
    batch = np.zeros((1, 3, height, width), np.float32)
    batch[0, :, :, :resized_w] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return batch


def det_input(image: np.ndarray) -> np.ndarray:
    """PaddleOCR detector preprocessing (ImageNet mean/std); 1x3xHxW float32 (H, W multiples
    of 32 expected)."""
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    scaled = (image.astype(np.float32) / 255.0 - mean) / std
    return scaled.transpose(2, 0, 1)[None].copy()


def ctc_decode(probs: np.ndarray, model: str | os.PathLike[str]) -> list[str]:
    """Greedy CTC decoding of a PaddleOCR recognizer's output (NxTxC) with the character list
    stored in the model's metadata (class 0 is the blank; the last class a space)."""
    proto = onnx.load(str(model), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    if "character" not in meta:
        raise ModelLoadError(f"{model} carries no 'character' metadata to decode with")
    chars = ["", *meta["character"].splitlines(), " "]
    texts = []
    for row in np.asarray(probs).argmax(axis=-1):
        picked = [int(c) for k, c in enumerate(row) if c and (k == 0 or c != row[k - 1])]
        texts.append("".join(chars[c] if c < len(chars) else "" for c in picked))
    return texts
