"""Paddle 2.x-style online TensorRT: convert a plain ONNX model at load, cache in ``_opt_cache/``.

Importing this package loads no compiler code; ``hybridtrt.online.predictor`` does (lazily,
from ``create_predictor``).
"""

from hybridtrt.online.settings import DEFAULT_CALIBRATION_RUNS, OnlineTensorRT, PrecisionType

__all__ = ["DEFAULT_CALIBRATION_RUNS", "OnlineTensorRT", "PrecisionType"]
