"""The real ``TrtBackend``: TensorRT's logger, version and GPU query (imports ``tensorrt``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import SupportsInt

import tensorrt as trt

from hybridtrt.trt.api import BuildOutput, BuildSpec, GpuInfo, ParserVerdict, TensorRTFailure, TrtEngine

__all__ = ["LOGGER", "TensorRTBackend", "capture_errors", "dims"]

_LOG = logging.getLogger("hybridtrt.tensorrt")


class _Logger(trt.ILogger):
    """Routes TensorRT's messages to Python logging and keeps this thread's errors."""

    def __init__(self) -> None:
        trt.ILogger.__init__(self)
        self._local = threading.local()

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
            _LOG.debug("TensorRT error: %s", msg)  # surfaced through the failure that follows
            errors = getattr(self._local, "errors", None)
            if errors is not None:
                errors.append(msg)
        elif severity == trt.ILogger.Severity.WARNING:
            _LOG.debug("TensorRT warning: %s", msg)
        else:
            _LOG.debug("TensorRT: %s", msg)

    @contextmanager
    def capturing(self) -> Iterator[list[str]]:
        previous = getattr(self._local, "errors", None)
        self._local.errors = []
        try:
            yield self._local.errors
        finally:
            self._local.errors = previous


LOGGER = _Logger()  # TensorRT wants one logger for the whole process


@contextmanager
def capture_errors() -> Iterator[list[str]]:
    """Collect the errors TensorRT logs on this thread inside the block."""
    with LOGGER.capturing() as errors:
        yield errors


def dims(shape: trt.Dims | Sequence[SupportsInt]) -> tuple[int, ...]:
    """A TensorRT shape as a tuple of ints (-1 for dynamic dimensions)."""
    return tuple(int(shape[k]) for k in range(len(shape)))


def _gpu_info(device_id: int) -> GpuInfo:
    from cuda.bindings import runtime as cudart

    err, props = cudart.cudaGetDeviceProperties(device_id)
    if int(err) != 0:
        raise TensorRTFailure(f"cannot query CUDA device {device_id}: {err}")
    name = props.name.decode(errors="replace").rstrip("\x00") if isinstance(props.name, bytes) else str(props.name)
    return GpuInfo(name, f"{props.major}.{props.minor}")


class TensorRTBackend:
    """TensorRT as hybridtrt uses it (see ``hybridtrt.trt.api.TrtBackend``)."""

    def __init__(self) -> None:
        self.version = str(getattr(trt, "__version__", "unknown"))
        self._gpus: dict[int, GpuInfo] = {}

    def unusable_reason(self, device: str, device_id: int) -> str:
        if device != "cuda":
            return "TensorRT needs a GPU; the predictor runs on the CPU"
        try:
            self.gpu(device_id)
        except (TensorRTFailure, ImportError) as exc:
            return f"TensorRT cannot use CUDA device {device_id}: {exc}"
        return ""

    def gpu(self, device_id: int) -> GpuInfo:
        found = self._gpus.get(device_id)
        if found is None:
            found = self._gpus[device_id] = _gpu_info(device_id)
        return found

    def parse_support(self, model: bytes) -> ParserVerdict:
        from hybridtrt.trt.tensorrt_build import parse_support

        return parse_support(model)

    def build(self, model: bytes, spec: BuildSpec, progress: Callable[[str], None]) -> BuildOutput:
        from hybridtrt.trt.tensorrt_build import build

        return build(model, spec, progress)

    def deserialize(self, plan: bytes, refit_model: bytes | None) -> TrtEngine:
        from hybridtrt.trt.tensorrt_run import deserialize

        return deserialize(plan, refit_model)
