"""Writing a picture: its format by the file's suffix, and the atomic write."""

from __future__ import annotations

import os
from pathlib import Path

from hybridtrt.core.files import write_atomically
from hybridtrt.errors import ConfigError, SaveError
from hybridtrt.tools.picture.page import render_html
from hybridtrt.tools.picture.svg import render_svg
from hybridtrt.tools.picture.view import GraphView

__all__ = ["picture_format", "render_file", "write_picture"]


def write_picture(path: str | os.PathLike[str], text: str) -> Path:
    """Write a rendered picture atomically (readers never see half a file).

    Raises:
        SaveError: The file cannot be written (the message names it).
    """
    target = Path(path)
    try:
        write_atomically(target, text.encode("utf-8"))
    except OSError as exc:
        raise SaveError(f"cannot write the picture to {target}: {exc}") from exc
    return target


def picture_format(path: str | os.PathLike[str]) -> str:
    """``"html"`` or ``"svg"``, by the file's suffix (``.html``/``.htm`` or ``.svg``).

    Raises:
        ConfigError: The suffix is neither.
    """
    suffix = Path(path).suffix.lower()
    if suffix in (".html", ".htm"):
        return "html"
    if suffix == ".svg":
        return "svg"
    raise ConfigError(f"cannot draw the picture into {path}: its name must end in .html or .svg")


def render_file(view: GraphView, path: str | os.PathLike[str]) -> Path:
    """Render as HTML or SVG by the file's suffix (see ``picture_format``) and write it.

    Raises:
        ConfigError: The suffix is neither.
        SaveError: The file cannot be written.
    """
    render = render_html if picture_format(path) == "html" else render_svg
    return write_picture(path, render(view))
