"""The online TensorRT settings ``Config.enable_tensorrt_engine`` and friends record."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence

from hybridtrt.errors import ConfigError

__all__ = ["DEFAULT_CALIBRATION_RUNS", "OnlineTensorRT", "PrecisionType", "shape_table"]

# Runs of real traffic collected before INT8 is calibrated (Paddle's guide suggests 500;
# 200 keeps the FP32 phase short and is what the OCR example needs for stable ranges).
DEFAULT_CALIBRATION_RUNS = 200

ShapeTable = tuple[tuple[str, tuple[int, ...]], ...]


class PrecisionType(str, enum.Enum):
    """Engine precision in Paddle Inference's names (``paddle.inference.PrecisionType``)."""

    Float32 = "fp32"
    Half = "fp16"
    Bfloat16 = "bf16"
    Int8 = "int8"


def shape_table(shapes: Mapping[str, Sequence[int]], what: str) -> ShapeTable:
    """``{input name: shape}`` as a sorted tuple of ``(name, dims)`` (hashable, canonical)."""
    if not isinstance(shapes, Mapping):
        raise ConfigError(f"{what} must be a dict of input name to shape, got {shapes!r}")
    table = []
    for name, dims in shapes.items():
        try:
            shape = tuple(int(d) for d in dims)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{what}[{name!r}] must be a list of integers, got {dims!r}") from exc
        table.append((str(name), shape))
    return tuple(sorted(table))


@dataclasses.dataclass(frozen=True)
class OnlineTensorRT:
    """TensorRT switched on for a plain ONNX model, with Paddle 2.x's meaning of each argument.

    Attributes:
        workspace_size: TensorRT builder workspace limit in bytes.
        max_batch_size: Recorded for Paddle compatibility (profiles set the batch range).
        min_subgraph_size: Smallest cluster (in ONNX nodes) worth an engine.
        precision: Engine precision.
        use_static: Keep the built hybrid model (and calibration table) in
            ``<model dir>/_opt_cache/`` and load it from there next time.
        use_calib_mode: Int8: calibrate on the first ``calibration_runs`` real inputs.
        calibration_runs: How many runs the calibration collects before building INT8.
        min_shapes, max_shapes, opt_shapes: ``set_trt_dynamic_shape_info`` profiles.
        disabled_ops: Op types or node names kept out of TensorRT.
        collect_shape_path: ``collect_shape_range_info``: record input shapes here.
        tuned_shape_path: ``enable_tuned_tensorrt_dynamic_shape``: read profiles from here.
        allow_build_at_runtime: A shape outside the profiles widens them and rebuilds.
    """

    workspace_size: int = 1 << 30
    max_batch_size: int = 1
    min_subgraph_size: int = 3
    precision: PrecisionType = PrecisionType.Float32
    use_static: bool = False
    use_calib_mode: bool = False
    calibration_runs: int = DEFAULT_CALIBRATION_RUNS
    min_shapes: ShapeTable = ()
    max_shapes: ShapeTable = ()
    opt_shapes: ShapeTable = ()
    disabled_ops: tuple[str, ...] = ()
    collect_shape_path: str | None = None
    tuned_shape_path: str | None = None
    allow_build_at_runtime: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "precision", PrecisionType(self.precision))
        except ValueError as exc:
            names = ", ".join(f"PrecisionType.{p.name}" for p in PrecisionType)
            raise ConfigError(f"precision_mode {self.precision!r} is not one of {names}") from exc
        for name in ("workspace_size", "max_batch_size", "min_subgraph_size", "calibration_runs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.use_calib_mode and self.precision is not PrecisionType.Int8:
            raise ConfigError("use_calib_mode=True calibrates INT8: give "
                              "precision_mode=PrecisionType.Int8, or use_calib_mode=False")
        named = [{n for n, _ in t} for t in (self.min_shapes, self.max_shapes, self.opt_shapes)]
        if named[0] != named[1] or named[0] != named[2]:
            raise ConfigError("set_trt_dynamic_shape_info: min, max and opt must name the same "
                              f"inputs, got {sorted(named[0])}, {sorted(named[1])}, "
                              f"{sorted(named[2])}")
        if self.min_shapes and self.tuned_shape_path:
            raise ConfigError("give either set_trt_dynamic_shape_info or "
                              "enable_tuned_tensorrt_dynamic_shape, not both")
        if self.collect_shape_path and self.tuned_shape_path:
            raise ConfigError("collect_shape_range_info records a shape file and "
                              "enable_tuned_tensorrt_dynamic_shape reads one: use one per run")
