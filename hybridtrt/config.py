"""User-facing conversion settings: Input shape ranges, precision, and TensorRTConfig."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hybridtrt.errors import ConfigError
from hybridtrt.trt.api import HARDWARE_COMPATIBILITY
from hybridtrt.trt.rtx import check_targets

__all__ = ["Input", "PrecisionMode", "TensorRTConfig"]

Shape = tuple[int, ...]


class PrecisionMode(str, enum.Enum):
    """Precision of the TensorRT engines (as Paddle's ``paddle.tensorrt.export.PrecisionMode``)."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"


def _shape(value: Any, what: str) -> Shape | None:
    if value is None:
        return None
    try:
        dims = tuple(int(d) for d in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be a sequence of integers, got {value!r}") from exc
    if any(d < 0 for d in dims):
        raise ConfigError(f"{what} has a negative dimension: {dims}")
    return dims


def _required_shape(value: Any, what: str) -> Shape:
    shape = _shape(value, what)
    if shape is None:
        raise ConfigError(f"{what} is required")
    return shape


@dataclasses.dataclass(frozen=True)
class Input:
    """The shape range of one model input, for one optimization profile.

    Give either ``min_input_shape``/``optim_input_shape``/``max_input_shape`` or
    ``warmup_data`` (not both), as in Paddle's ``paddle.tensorrt.Input``. Several ``Input`` objects
    for the same name make several optimization profiles.

    Attributes:
        name: Model input name; None matches inputs by position (all Inputs must then be unnamed).
        min_input_shape: Smallest shape the engines must accept.
        optim_input_shape: Shape TensorRT tunes for.
        max_input_shape: Largest shape the engines must accept.
        input_data_type: Dtype of generated data (default: the model input's dtype).
        input_range: (low, high) of generated random data (default (0, 1); ints: (0, 2)).
        warmup_data: Real samples (numpy arrays); shapes and ranges are taken from them.

    Example:
        >>> Input(name="x", min_input_shape=(1, 3, 32, 32), optim_input_shape=(1, 3, 64, 64),
        ...       max_input_shape=(4, 3, 128, 128)).max_input_shape
        (4, 3, 128, 128)
    """

    name: str | None = None
    min_input_shape: Sequence[int] | None = None
    optim_input_shape: Sequence[int] | None = None
    max_input_shape: Sequence[int] | None = None
    input_data_type: str | None = None
    input_range: tuple[float, float] | None = None
    warmup_data: Sequence[np.ndarray] | np.ndarray | None = None

    def __post_init__(self) -> None:
        label = f"Input({self.name!r})" if self.name else "Input"
        shapes = (self.min_input_shape, self.optim_input_shape, self.max_input_shape)
        if self.warmup_data is not None:
            if any(s is not None for s in shapes):
                raise ConfigError(
                    f"{label}: give either warmup_data or min/optim/max_input_shape, not both"
                )
            samples = _samples(self.warmup_data, label)
            object.__setattr__(self, "warmup_data", samples)
            return
        if any(s is None for s in shapes):
            raise ConfigError(
                f"{label}: min_input_shape, optim_input_shape and max_input_shape are all "
                "required (or give warmup_data)"
            )
        lo, opt, hi = (_required_shape(s, f"{label}.{n}") for s, n in zip(shapes, _SHAPE_FIELDS))
        _check_order(label, lo, opt, hi)
        object.__setattr__(self, "min_input_shape", lo)
        object.__setattr__(self, "optim_input_shape", opt)
        object.__setattr__(self, "max_input_shape", hi)
        if self.input_range is not None:
            try:
                low, high = (float(v) for v in self.input_range)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{label}.input_range must be (low, high), got "
                                  f"{self.input_range!r}") from exc
            if not low < high:
                raise ConfigError(f"{label}.input_range must be (low, high) with low < high")
        if self.input_data_type is not None:
            try:
                np.dtype(self.input_data_type)
            except TypeError as exc:
                raise ConfigError(
                    f"{label}.input_data_type {self.input_data_type!r} is not a numpy dtype"
                ) from exc

    @property
    def samples(self) -> tuple[np.ndarray, ...]:
        """The warm-up samples (empty for shape-range Inputs)."""
        return tuple(self.warmup_data) if self.warmup_data is not None else ()

    def shapes(self) -> tuple[Shape, Shape, Shape]:
        """(min, opt, max); for warm-up data: elementwise min, the middle sample, max."""
        if self.warmup_data is None:
            return (self.min_input_shape, self.optim_input_shape, self.max_input_shape)  # type: ignore[return-value]
        dims = [s.shape for s in self.samples]
        lo = tuple(int(min(d)) for d in zip(*dims))
        hi = tuple(int(max(d)) for d in zip(*dims))
        return lo, tuple(int(d) for d in dims[len(dims) // 2]), hi


CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# The accuracy guard's default bound on each engine output's relative L2 error against FP32 on
# the warm-up inputs. FP16/BF16: half the 1e-2 wanted on inputs the guard never saw, which err
# more (docs/PRECISION.md: 3x on the PaddleOCR recognizer in FP16).
DEFAULT_ACCURACY_TOLERANCE = {"fp16": 5e-3, "bf16": 5e-3, "int8": 2e-1}
BACKENDS = ("auto", "tensorrt", "tensorrt_rtx")

_SHAPE_FIELDS = ("min_input_shape", "optim_input_shape", "max_input_shape")


def _samples(data: Any, label: str) -> tuple[np.ndarray, ...]:
    samples = (data,) if isinstance(data, np.ndarray) else tuple(data)
    if not samples:
        raise ConfigError(f"{label}.warmup_data is empty; give at least one array")
    arrays = tuple(np.asarray(s) for s in samples)
    ranks = {a.ndim for a in arrays}
    if len(ranks) != 1:
        raise ConfigError(f"{label}.warmup_data arrays have different ranks: {sorted(ranks)}")
    return arrays


def _tolerance(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 < float(value) < float("inf"):
        raise ConfigError(f"{what} must be a positive number (a relative L2 error such as "
                          f"1e-2), got {value!r}")
    return float(value)


def _check_order(label: str, lo: Shape, opt: Shape, hi: Shape) -> None:
    if not len(lo) == len(opt) == len(hi):
        raise ConfigError(
            f"{label}: min/optim/max shapes have different ranks: {list(lo)}, {list(opt)}, "
            f"{list(hi)}"
        )
    for axis, (a, b, c) in enumerate(zip(lo, opt, hi)):
        if not a <= b <= c:
            raise ConfigError(
                f"{label}: dimension {axis} must satisfy min <= opt <= max, got {a}, {b}, {c} "
                f"(min {list(lo)}, opt {list(opt)}, max {list(hi)})"
            )


@dataclasses.dataclass(frozen=True)
class TensorRTConfig:
    """How ``convert`` partitions the model and builds its TensorRT engines.

    Attributes:
        inputs: Shape ranges of the dynamic model inputs (static inputs need none).
        min_subgraph_size: Smallest cluster (in ONNX nodes) worth a TensorRT engine.
        disable_ops: Op types or node names to keep out of TensorRT.
        precision_mode: Engine precision, written into each cluster's graph before the build
            (TensorRT 11 builds strongly typed networks only): FP16/BF16 cast the cluster with
            FP32 at its boundary; INT8 keeps the model's Q/DQ nodes or inserts calibrated ones.
        ops_run_float: Op types or node names kept in FP32 inside FP16/BF16 engines.
        precision_guard: Also keep numerically fragile nodes in FP32: activations past FP16's
            safe range or below its normal range in the warm-up runs (with the nodes that read
            them), reductions over many elements, LayerNorm, long Softmax, Pow/Exp (the report
            lists each with its reason).
        clamp_fp16_weights: Clamp weights beyond FP16's range (with a warning) instead of
            keeping their nodes in FP32.
        accuracy_check: FP16/BF16/INT8: run each lowered engine and its FP32 original in ONNX
            Runtime on the warm-up inputs and, where an output errs beyond
            ``accuracy_tolerance``, keep the nodes responsible in FP32 (found by bisection;
            INT8: the fewest layers whose quantization costs most).
        accuracy_tolerance: The relative L2 error each engine output may have against FP32
            (an output also passes when its largest absolute error is within a tenth of this
            times the output's range): a number, or ``{tensor name: number}`` for some engine
            outputs (the others keep the default: 5e-3 for FP16 and BF16, 0.2 for INT8). A
            Softmax or Sigmoid output's logits are held to its tolerance too.
        strict_accuracy: Raise ``AccuracyError`` for an engine beyond tolerance instead of
            keeping nodes in FP32.
        calibration_data: INT8 samples: an iterable of ``{input name: array}`` feeds, or a
            directory of ``.npz`` files (one feed each) or ``.npy`` files (single-input models).
        calibration_method: ``"percentile"`` (default: 99.999th percentile, robust to
            outliers), ``"minmax"`` or ``"entropy"``.
        calibration_cache: JSON file of calibrated ranges; reused when it matches the model and
            method (no calibration run), rewritten otherwise.
        int8_fp32_layers: INT8: keep this many of each engine's layers in FP32, the ones whose
            quantization alone moves the engine's outputs most on the first calibration
            samples (a sensitivity analysis; needs ``calibration_data``; 0: off).
        save_model_dir: When set, ``convert`` saves the hybrid model there as ``model.onnx``.
        workspace_size: TensorRT builder workspace limit in bytes.
        optimization_level: TensorRT builder optimization level, 0..5.
        strict: Make a cluster TensorRT cannot build an error (default: bisect it, keep the
            parts that build and leave the rest to ONNX Runtime).
        cache_dir: Engine and timing cache directory (default: ``$HYBRIDTRT_CACHE_DIR`` or
            ``~/.cache/hybridtrt``).
        strip_weights: Store weight-stripped plans, refitted at load from the subgraph's own
            weights, so the hybrid model holds its weights once (False: full plans).
        hardware_compatibility: ``"none"``, ``"ampere_plus"`` (plans run on any GPU of compute
            capability 8.0 and newer) or ``"same_compute_capability"``.
        device_id: The CUDA device that builds the engines.
        backend: The TensorRT library that builds: ``"tensorrt"``, ``"tensorrt_rtx"``
            (TensorRT-RTX, which builds ahead of time without a GPU) or ``"auto"`` (TensorRT
            when installed, else TensorRT-RTX).
        target_compute_capabilities: TensorRT-RTX: the compute capabilities to build for, such
            as ``("8.6", "8.9")`` (default: the GPU here, or every GPU TensorRT-RTX runs on
            when there is none). TensorRT proper builds for the GPU here.
        shape_range_info: A shape range file recorded on real inputs (Paddle's
            ``collect_shape_range_info``): the model inputs' profile comes from it (instead of
            ``inputs``), and each engine input's profile is widened to the range recorded for
            that tensor (shapes that depend on the input's values, not only its shape).

    Example:
        >>> TensorRTConfig(inputs=[], min_subgraph_size=1).min_subgraph_size
        1
    """

    inputs: Sequence[Input] = ()
    min_subgraph_size: int = 3
    disable_ops: Sequence[str] = ()
    precision_mode: PrecisionMode = PrecisionMode.FP32
    save_model_dir: str | os.PathLike[str] | None = None
    workspace_size: int = 1 << 30
    optimization_level: int = 3
    strict: bool = False
    cache_dir: str | os.PathLike[str] | None = None
    strip_weights: bool = True
    hardware_compatibility: str = "none"
    device_id: int = 0
    ops_run_float: Sequence[str] = ()
    precision_guard: bool = True
    clamp_fp16_weights: bool = False
    accuracy_check: bool = True
    accuracy_tolerance: float | Mapping[str, float] | None = None
    strict_accuracy: bool = False
    calibration_data: Any = None
    calibration_method: str = "percentile"
    calibration_cache: str | os.PathLike[str] | None = None
    int8_fp32_layers: int = 0
    backend: str = "auto"
    target_compute_capabilities: Sequence[str] = ()
    shape_range_info: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        if self.shape_range_info is not None and self.inputs:
            raise ConfigError("give either inputs or shape_range_info (which holds the inputs' "
                              "ranges), not both")
        self._normalize_names()
        self._check_choices()
        self._check_types()
        self._normalize_precision()
        self._check_accuracy_settings()
        self._check_build_limits()

    def _normalize_names(self) -> None:
        """``inputs`` as a tuple of Inputs; ``disable_ops`` and ``ops_run_float`` as tuples."""
        raw = () if self.inputs is None else self.inputs
        inputs = (raw,) if isinstance(raw, Input) else tuple(raw)
        for item in inputs:
            if not isinstance(item, Input):
                raise ConfigError(f"TensorRTConfig.inputs must hold Input objects, got {item!r}")
        if len({i.name is None for i in inputs}) > 1:
            raise ConfigError("TensorRTConfig.inputs: name all Inputs or none of them")
        object.__setattr__(self, "inputs", inputs)
        for field in ("disable_ops", "ops_run_float"):
            names = getattr(self, field) or ()
            names = (names,) if isinstance(names, str) else names
            object.__setattr__(self, field, tuple(str(op) for op in names))

    def _check_choices(self) -> None:
        """The settings that take one of a few names, and the RTX target list."""
        if self.calibration_method not in CALIBRATION_METHODS:
            raise ConfigError(f"calibration_method must be one of {list(CALIBRATION_METHODS)}, "
                              f"got {self.calibration_method!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        try:
            targets = check_targets([self.target_compute_capabilities]
                                    if isinstance(self.target_compute_capabilities, str)
                                    else list(self.target_compute_capabilities or ()))
        except ValueError as exc:
            raise ConfigError(f"target_compute_capabilities: {exc}") from exc
        object.__setattr__(self, "target_compute_capabilities", targets)
        if targets and self.backend == "tensorrt":
            raise ConfigError("target_compute_capabilities applies to TensorRT-RTX "
                              "(backend='tensorrt_rtx'); TensorRT builds for the GPU that builds")
        if self.hardware_compatibility not in HARDWARE_COMPATIBILITY:
            raise ConfigError(f"hardware_compatibility must be one of {list(HARDWARE_COMPATIBILITY)}, "
                              f"got {self.hardware_compatibility!r}")

    def _check_types(self) -> None:
        """The flags are booleans and the counts integers in range."""
        if isinstance(self.int8_fp32_layers, bool) or not isinstance(self.int8_fp32_layers, int) \
                or self.int8_fp32_layers < 0:
            raise ConfigError(f"int8_fp32_layers must be an integer >= 0, got "
                              f"{self.int8_fp32_layers!r}")
        for flag in ("strict", "strip_weights", "precision_guard", "clamp_fp16_weights",
                     "accuracy_check", "strict_accuracy"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{flag} must be True or False, got {getattr(self, flag)!r}")
        for name in ("min_subgraph_size", "workspace_size", "optimization_level", "device_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
        if self.device_id < 0:
            raise ConfigError(f"device_id must be >= 0, got {self.device_id}")
        if self.min_subgraph_size < 1:
            raise ConfigError(f"min_subgraph_size must be >= 1, got {self.min_subgraph_size}")

    def _normalize_precision(self) -> None:
        """``precision_mode`` as a PrecisionMode (names in any case); INT8-only settings checked."""
        try:
            mode = self.precision_mode
            if isinstance(mode, str) and not isinstance(mode, PrecisionMode):
                mode = mode.lower()
            object.__setattr__(self, "precision_mode", PrecisionMode(mode))
        except ValueError as exc:
            choices = ", ".join(m.name for m in PrecisionMode)
            raise ConfigError(
                f"precision_mode {self.precision_mode!r} is not one of {choices}"
            ) from exc
        if self.int8_fp32_layers and self.precision_mode is not PrecisionMode.INT8:
            raise ConfigError(f"int8_fp32_layers applies to precision_mode INT8, not "
                              f"{self.precision_mode.value}")

    def _check_build_limits(self) -> None:
        if int(self.workspace_size) <= 0:
            raise ConfigError(f"workspace_size must be a positive byte count, got {self.workspace_size}")
        if not 0 <= int(self.optimization_level) <= 5:
            raise ConfigError(
                f"optimization_level must be 0..5 (TensorRT builder levels), got "
                f"{self.optimization_level}"
            )

    def _check_accuracy_settings(self) -> None:
        tolerance = self.accuracy_tolerance
        if isinstance(tolerance, Mapping):
            object.__setattr__(self, "accuracy_tolerance", {
                str(k): _tolerance(v, f"accuracy_tolerance[{k!r}]") for k, v in tolerance.items()})
        elif tolerance is not None:
            object.__setattr__(self, "accuracy_tolerance",
                               _tolerance(tolerance, "accuracy_tolerance"))
        if self.strict_accuracy and not self.accuracy_check:
            raise ConfigError("strict_accuracy=True needs accuracy_check=True (it raises when "
                              "the accuracy check fails)")
        given = [n for n, v in (("accuracy_tolerance", tolerance is not None),
                                ("strict_accuracy", self.strict_accuracy)) if v]
        if given and self.precision_mode.value not in DEFAULT_ACCURACY_TOLERANCE:
            raise ConfigError(f"{' and '.join(given)} apply to precision_mode FP16, BF16 or "
                              f"INT8 (the "
                              f"accuracy guard checks their engines), not "
                              f"{self.precision_mode.value}")

    def tolerance(self, output: str) -> float:
        """The accuracy guard's relative L2 bound for the engine output ``output``."""
        default = DEFAULT_ACCURACY_TOLERANCE.get(self.precision_mode.value, 0.0)
        tolerance = self.accuracy_tolerance
        if isinstance(tolerance, Mapping):
            return float(tolerance.get(output, default))
        return float(tolerance) if tolerance is not None else default

    def build_settings(self) -> dict[str, Any]:
        """The settings that change an engine (and so its cache key and fingerprint)."""
        return {
            "precision_mode": self.precision_mode.value,
            "workspace_size": int(self.workspace_size),
            "optimization_level": int(self.optimization_level),
            "strip_weights": self.strip_weights,
            "hardware_compatibility": self.hardware_compatibility,
            **({"target_compute_capabilities": list(self.target_compute_capabilities)}
               if self.target_compute_capabilities else {}),
            **self.precision_settings(),
        }

    def precision_settings(self) -> dict[str, Any]:
        """The settings that shape the typed cluster graphs."""
        mode = self.precision_mode
        settings: dict[str, Any] = {}
        if mode in (PrecisionMode.FP16, PrecisionMode.BF16):
            settings = {"ops_run_float": list(self.ops_run_float),
                        "precision_guard": self.precision_guard}
            if mode is PrecisionMode.FP16:
                settings["clamp_fp16_weights"] = self.clamp_fp16_weights
        elif mode is PrecisionMode.INT8:
            settings = {"calibration_method": self.calibration_method}
            if self.int8_fp32_layers:
                settings["int8_fp32_layers"] = self.int8_fp32_layers
        if mode.value in DEFAULT_ACCURACY_TOLERANCE:
            settings["accuracy_check"] = self.accuracy_check
            if self.accuracy_check:
                tolerance = self.accuracy_tolerance
                settings["accuracy_tolerance"] = (
                    dict(sorted(tolerance.items())) if isinstance(tolerance, Mapping)
                    else self.tolerance(""))
                settings["strict_accuracy"] = self.strict_accuracy
        return settings

    def settings_hash(self) -> str:
        """SHA-256 of ``build_settings()`` in canonical JSON."""
        text = json.dumps(self.build_settings(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
