"""``collect_shape_range_info``: the shape range of every tensor over the runs it is shown."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from hybridtrt.compiler.shape_info import ShapeRangeInfo
from hybridtrt.compiler.shapes import recording_session
from hybridtrt.core.files import write_atomically
from hybridtrt.core.graph import GraphIndex
from hybridtrt.core.loading import load_model

__all__ = ["ShapeRecorder"]

Shape = tuple[int, ...]


class ShapeRecorder:
    """Keeps the min/max (and the most frequent, as opt) shape of every model input and of
    every tensor a node computes (the model runs a second time in ONNX Runtime, all its
    tensors as outputs, as Paddle's collection does).

    Args:
        model: The plain ONNX model (its weights loaded).
        inputs: The model's input names.
    """

    def __init__(self, model: onnx.ModelProto, inputs: Mapping[str, int]) -> None:
        self._inputs = list(inputs)
        self._tensors = list(dict.fromkeys(o for n in model.graph.node for o in n.output if o))
        loaded = load_model(model)  # (typed: every recorded output needs its dtype)
        self._session: Any = recording_session(GraphIndex(loaded.model, loaded.inferred),
                                               self._tensors)
        self._seen: dict[str, dict[Shape, int]] = {}

    def record(self, feeds: Mapping[str, Any]) -> None:
        """Note the shape of every model input in ``feeds`` and of every tensor they give."""
        given = {n: np.asarray(v) for n, v in feeds.items() if n in self._inputs}
        values = self._session.run(self._tensors, given)
        shapes = [*((n, np.shape(v)) for n, v in given.items()),
                  *((n, np.shape(v)) for n, v in zip(self._tensors, values))]
        for name, shape in shapes:
            counts = self._seen.setdefault(name, {})
            key = tuple(int(d) for d in shape)
            counts[key] = counts.get(key, 0) + 1

    def info(self) -> ShapeRangeInfo:
        """The ranges over the recorded runs (tensors of a changing rank left out)."""
        ranges = {}
        for name, counts in sorted(self._seen.items()):
            shapes = sorted(counts)
            if len({len(s) for s in shapes}) == 1:
                opt = max(shapes, key=lambda s: (counts[s], s))
                ranges[name] = {"min": [min(d) for d in zip(*shapes)],
                                "max": [max(d) for d in zip(*shapes)], "opt": list(opt)}
        inputs = {n: r for n, r in ranges.items() if n in self._inputs}
        return ShapeRangeInfo(inputs, {n: r for n, r in ranges.items() if n not in inputs})

    def write(self, path: Path) -> None:
        """Write the ranges as JSON, atomically."""
        write_atomically(path, self.info().to_json().encode())
