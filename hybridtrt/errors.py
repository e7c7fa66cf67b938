"""The exceptions hybridtrt raises: user errors under HybridTRTError, bugs under InternalError."""

from __future__ import annotations

__all__ = [
    "AccuracyError",
    "ConfigError",
    "EngineBuildError",
    "ExecutionError",
    "FormatError",
    "HybridTRTError",
    "IncompatibleEngineError",
    "InputError",
    "InternalError",
    "ModelLoadError",
    "SaveError",
    "UnsupportedModelError",
]


class HybridTRTError(Exception):
    """Base class of every error caused by the user's model, inputs, files or settings."""


class ModelLoadError(HybridTRTError):
    """The model file is missing, is not ONNX, is truncated, or uses a version onnx cannot read."""


class ConfigError(HybridTRTError, ValueError):
    """A setting of TensorRTConfig, Input or the runtime Config is invalid."""


class InputError(HybridTRTError, ValueError):
    """Inputs or input shapes do not match the model (names, ranks, dtypes, ranges)."""


class UnsupportedModelError(HybridTRTError):
    """The model uses something hybridtrt cannot handle at all (not merely outside TensorRT)."""


class EngineBuildError(HybridTRTError):
    """TensorRT could not build an engine and strict mode was asked for."""


class AccuracyError(EngineBuildError):
    """A low-precision engine errs beyond ``accuracy_tolerance`` and strict_accuracy was asked for."""


class IncompatibleEngineError(HybridTRTError):
    """A serialized engine does not match the installed TensorRT or this GPU."""


class FormatError(HybridTRTError):
    """A hybrid model file is corrupt, tampered with, or written by a newer format version."""


class ExecutionError(HybridTRTError):
    """A segment failed while running (the message names the segment and the runtime's error)."""


class SaveError(HybridTRTError):
    """A hybrid model could not be written to the requested place."""


class InternalError(RuntimeError):
    """An invariant of hybridtrt itself was broken: a bug, please report it."""
