"""What the tools run: a hybrid model (loaded, or converted in memory from plain ONNX), its
predictor, the original model for plain ONNX Runtime, and input feeds."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from hybridtrt.core.hybrid import HybridModel, load
from hybridtrt.core.inline import inline_engines
from hybridtrt.core.loading import read_onnx_file
from hybridtrt.compiler.pipeline import convert
from hybridtrt.compiler.shapes import random_value
from hybridtrt.config import Input, TensorRTConfig
from hybridtrt.errors import InputError
from hybridtrt.core.format import format_version
from hybridtrt.runtime.config import RuntimeSettings
from hybridtrt.runtime.predictor import Predictor
from hybridtrt.trt.api import TrtBackend

__all__ = ["Target", "load_target", "make_feeds"]

_LOG = logging.getLogger("hybridtrt")


@dataclasses.dataclass(frozen=True)
class Target:
    """A model ready to run through the Predictor, and the plain model to compare it with.

    Attributes:
        path: The file the user named.
        hybrid: The hybrid model (converted in memory when ``path`` is plain ONNX).
        original: The plain ONNX model: ``path`` itself, the model the hybrid was converted
            from (when that file still exists), or the hybrid with every engine inlined.
        original_from: Where ``original`` came from, in words.
        backend: TensorRT behind its narrow interface (None: the installed one, if any).
    """

    path: Path
    hybrid: HybridModel
    original: onnx.ModelProto
    original_from: str
    backend: TrtBackend | None = None

    def predictor(self, use_gpu: bool = False, device_id: int = 0, isolate_engines: bool = False,
                  **settings: Any) -> Predictor:
        """A predictor over the hybrid model with the given runtime settings."""
        chosen = RuntimeSettings(self.path, use_gpu=use_gpu, device_id=device_id,
                                 isolate_engines=isolate_engines, **settings)
        return Predictor(chosen, hybrid=self.hybrid, backend=self.backend)


def load_target(path: str | os.PathLike[str], shapes: Mapping[str, tuple[int, ...]] | None = None,
                original: str | os.PathLike[str] | None = None) -> Target:
    """Read ``path``: a hybrid model as saved, or a plain ONNX model converted in memory.

    Args:
        path: A hybrid model or a plain ONNX model.
        shapes: Static input shapes for converting a plain model (ignored for a hybrid).
        original: The plain model to compare with (default: see ``Target.original``).
    """
    path = Path(path)
    header = read_onnx_file(path, load_weights=False)
    if format_version(header) is None:
        model = read_onnx_file(path)
        _require_static(model, shapes or {})
        inputs = [Input(name=n, min_input_shape=s, optim_input_shape=s, max_input_shape=s)
                  for n, s in (shapes or {}).items()]
        _LOG.info("%s is a plain ONNX model: converting it first", path)
        return Target(path, convert(model, TensorRTConfig(inputs=inputs)), model, str(path))
    hybrid = load(path)
    if original is not None:
        return Target(path, hybrid, read_onnx_file(Path(original)), str(original))
    report = hybrid.report()  # its source is a file name: looked for beside the hybrid, then here
    for source in (path.parent / report.source, Path(report.source)):
        if source.suffix != ".onnx" or not source.is_file():
            continue
        header = read_onnx_file(source, load_weights=False)
        if format_version(header) is None and len(header.graph.node) == report.nodes:
            return Target(path, hybrid, read_onnx_file(source), f"{source} (the converted model)")
    return Target(path, hybrid, inline_engines(hybrid.model),
                  "the hybrid model with every engine inlined (its source file is not here)")


def make_feeds(target: Target, predictor: Predictor,
               shapes: Mapping[str, tuple[int, ...]] | None = None,
               given: Mapping[str, np.ndarray] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for every model input: ``given`` arrays, else random values of ``shapes``, the
    model's static shape, or the opt shape of an engine profile that reads the input.

    Raises:
        InputError: A name is not a model input, or an input's shape cannot be chosen.
    """
    shapes = dict(shapes or {})
    given = dict(given or {})
    names = predictor.get_input_names()
    unknown = sorted((set(shapes) | set(given)) - set(names))
    if unknown:
        raise InputError(f"{unknown} are not model inputs; the inputs are {names}")
    rng = np.random.default_rng(seed)
    kinds = {v.name: v.type.WhichOneof("value") for v in target.hybrid.model.graph.input}
    feeds = {}
    for arg in predictor.get_inputs():
        if arg.name in given:
            feeds[arg.name] = given[arg.name]
            continue
        kind = kinds.get(arg.name, "tensor_type")
        if kind != "tensor_type":
            raise InputError(f"input '{arg.name}' is a {kind.removesuffix('_type')}, not a "
                             "tensor: random values cannot be made for it (run the model from "
                             "Python with a feed for it)")
        shape = shapes.get(arg.name)
        for fallback in (lambda: _static(arg.shape), lambda: _profile_opt(target, arg.name)):
            shape = fallback() if shape is None else shape
        if shape is None:
            raise InputError(_needs_shape(arg.name, arg.shape))
        feeds[arg.name] = random_value(tuple(shape), arg.dtype or np.dtype(np.float32), rng)
    return feeds


def _needs_shape(name: str, dims: list[int | str | None]) -> str:
    example = "x".join(str(d) if isinstance(d, int) and d > 0 else "N" for d in dims)
    return f"input '{name}' has dynamic shape {dims}: give it with --shapes {name}:{example}"


def _require_static(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """A plain model converted here needs a static shape for every dynamic input."""
    constants = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in constants or value.name in shapes:
            continue
        dims: list[int | str | None] = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value.type.tensor_type.shape.dim]
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape") \
                and _static(dims) is None:
            raise InputError(_needs_shape(value.name, dims))


def _static(dims: list[int | str | None]) -> tuple[int, ...] | None:
    """The shape when every dimension is fixed (``()`` for a scalar), else None."""
    if all(isinstance(d, int) and d > 0 for d in dims):
        return tuple(int(d) for d in dims)  # type: ignore[arg-type]
    return None


def _profile_opt(target: Target, name: str) -> tuple[int, ...] | None:
    for record in target.hybrid.engines:
        for profile in record.profiles:
            if name in profile:
                return tuple(profile[name]["opt"])
    return None

