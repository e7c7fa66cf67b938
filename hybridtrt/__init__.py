"""hybridtrt: run the TensorRT-capable parts of an ONNX model in TensorRT, the rest in ONNX Runtime."""

from __future__ import annotations

from hybridtrt.version import __version__
from hybridtrt.core.hybrid import HybridModel, load
from hybridtrt.compiler.pipeline import convert
from hybridtrt.config import Input, PrecisionMode, TensorRTConfig
from hybridtrt.errors import (
    AccuracyError,
    ConfigError,
    EngineBuildError,
    ExecutionError,
    FormatError,
    HybridTRTError,
    IncompatibleEngineError,
    InputError,
    InternalError,
    ModelLoadError,
    SaveError,
    UnsupportedModelError,
)

__all__ = [
    "AccuracyError",
    "ConfigError",
    "EngineBuildError",
    "ExecutionError",
    "FormatError",
    "HybridModel",
    "HybridTRTError",
    "IncompatibleEngineError",
    "Input",
    "InputError",
    "InternalError",
    "ModelLoadError",
    "PrecisionMode",
    "SaveError",
    "TensorRTConfig",
    "UnsupportedModelError",
    "__version__",
    "convert",
    "load",
]
