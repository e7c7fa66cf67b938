"""Shape range files: what ``collect_shape_range_info`` records and the tuned profile reads."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridtrt.config import Input
from hybridtrt.errors import ConfigError
from hybridtrt.core.files import write_atomically

__all__ = ["ShapeRecorder", "profile_inputs", "read_ranges"]

_FORMAT = "hybridtrt.shape_range_info/1"
Range = dict[str, list[int]]  # {"min": [...], "max": [...], "opt": [...]}


class ShapeRecorder:
    """Keeps the min/max (and the most frequent, as opt) shape of every input it is shown."""

    def __init__(self, inputs: Mapping[str, int]) -> None:
        self._ranks = dict(inputs)
        self._seen: dict[str, dict[tuple[int, ...], int]] = {name: {} for name in inputs}

    def record(self, feeds: Mapping[str, Any]) -> None:
        """Note the shape of every model input in ``feeds``."""
        for name, value in feeds.items():
            if name in self._seen:
                shape = tuple(int(d) for d in np.shape(value))
                self._seen[name][shape] = self._seen[name].get(shape, 0) + 1

    def ranges(self) -> dict[str, Range]:
        """``{input: {"min", "max", "opt"}}`` over the recorded runs (inputs seen at least once)."""
        out = {}
        for name, counts in sorted(self._seen.items()):
            if counts:
                shapes = sorted(counts)
                opt = max(shapes, key=lambda s: (counts[s], s))
                out[name] = {"min": [min(d) for d in zip(*shapes)],
                             "max": [max(d) for d in zip(*shapes)], "opt": list(opt)}
        return out

    def write(self, path: Path) -> None:
        """Write the ranges as JSON, atomically."""
        text = json.dumps({"format": _FORMAT, "inputs": self.ranges()}, indent=1, sort_keys=True)
        write_atomically(path, text.encode())


def read_ranges(path: Path, ranks: Mapping[str, int]) -> dict[str, Range]:
    """The ranges in ``path``, checked against the model's inputs (``{name: rank}``)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"shape range file {path} does not exist: run once with "
                          "config.collect_shape_range_info(path) to record it") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"shape range file {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ConfigError(f"shape range file {path} is not a hybridtrt shape range file "
                          f"(expected format {_FORMAT!r})")
    ranges = data.get("inputs", {})
    for name, entry in ranges.items():
        if name not in ranks:
            raise ConfigError(f"shape range file {path} names tensor {name!r}, which is not an "
                              f"input of this model (inputs: {sorted(ranks)})")
        for key in ("min", "max", "opt"):
            if len(entry.get(key, ())) != ranks[name]:
                raise ConfigError(f"shape range file {path}: tensor {name!r} has {key} shape "
                                  f"{entry.get(key)}, but the model's input has rank "
                                  f"{ranks[name]}")
    return ranges


def profile_inputs(ranges: Mapping[str, Mapping[str, Sequence[int]]]) -> list[Input]:
    """One ``Input`` per ranged tensor, for ``TensorRTConfig.inputs``."""
    return [Input(name=name, min_input_shape=r["min"], optim_input_shape=r["opt"],
                  max_input_shape=r["max"]) for name, r in sorted(ranges.items())]
