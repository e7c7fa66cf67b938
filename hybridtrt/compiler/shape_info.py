"""Shape range files: the shape range of every tensor over real runs (Paddle's
``collect_shape_range_info``), read back as the profile of a conversion."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx

from hybridtrt.config import Input
from hybridtrt.errors import ConfigError

__all__ = ["FORMAT", "ShapeRangeInfo", "read_shape_range_info"]

FORMAT = "hybridtrt.shape_range_info/1"
Range = Mapping[str, Sequence[int]]  # {"min": [...], "max": [...], "opt": [...]}


@dataclasses.dataclass(frozen=True)
class ShapeRangeInfo:
    """Recorded shape ranges: of the model's inputs, and of the tensors computed from them.

    Attributes:
        inputs: ``{model input: {"min", "max", "opt"}}``.
        tensors: ``{computed tensor: {"min", "max", "opt"}}`` (node outputs, as recorded).
    """

    inputs: Mapping[str, Range]
    tensors: Mapping[str, Range] = dataclasses.field(default_factory=dict)

    def profile_inputs(self) -> list[Input]:
        """One ``Input`` per recorded model input, for ``TensorRTConfig.inputs``."""
        return [Input(name=name, min_input_shape=r["min"], optim_input_shape=r["opt"],
                      max_input_shape=r["max"]) for name, r in sorted(self.inputs.items())]

    def to_json(self) -> str:
        """The file's text (sorted, so the same runs give the same bytes)."""
        return json.dumps({"format": FORMAT, "inputs": self.inputs, "tensors": self.tensors},
                          indent=1, sort_keys=True)


def read_shape_range_info(path: Path, model: onnx.ModelProto) -> ShapeRangeInfo:
    """The ranges in ``path``, checked against ``model`` (its input ranks, its tensor names).

    Raises:
        ConfigError: The file is missing, unreadable, of another format, or names a tensor
            the model does not have or a shape of another rank.
    """
    data = _load(path)
    weights = {t.name for t in model.graph.initializer}
    ranks = {i.name: len(i.type.tensor_type.shape.dim) for i in model.graph.input
             if i.name not in weights}
    computed = {o for node in model.graph.node for o in node.output if o}
    inputs, tensors = data.get("inputs", {}), data.get("tensors", {})
    for name, entry in inputs.items():
        if name not in ranks:
            raise ConfigError(f"shape range file {path} names tensor {name!r}, which is not an "
                              f"input of this model (inputs: {sorted(ranks)})")
        _check_entry(path, name, entry, ranks[name], "the model's input has")
    for name, entry in tensors.items():
        if name not in computed:
            raise ConfigError(f"shape range file {path} names tensor {name!r}, which no node of "
                              "this model computes: the file was recorded on another model")
        _check_entry(path, name, entry, len(entry.get("min", ())), "its min has")
    return ShapeRangeInfo(inputs, tensors)


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"shape range file {path} does not exist: run once with "
                          "config.collect_shape_range_info(path) to record it") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"shape range file {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"shape range file {path} is not a hybridtrt shape range file "
                          f"(expected format {FORMAT!r})")
    for key in ("inputs", "tensors"):
        if not isinstance(data.get(key, {}), dict):
            raise ConfigError(f"shape range file {path}: {key!r} must map tensor names to "
                              "{'min', 'max', 'opt'} shapes")
    return data


def _check_entry(path: Path, name: str, entry: Any, rank: int, whose: str) -> None:
    if not isinstance(entry, dict):
        raise ConfigError(f"shape range file {path}: tensor {name!r} must have min, max and opt "
                          f"shapes, got {entry!r}")
    for key in ("min", "max", "opt"):
        dims = entry.get(key)
        if (not isinstance(dims, list) or len(dims) != rank
                or not all(isinstance(d, int) and d >= 0 for d in dims)):
            raise ConfigError(f"shape range file {path}: tensor {name!r} has {key} shape "
                              f"{dims}, but {whose} rank {rank}")
