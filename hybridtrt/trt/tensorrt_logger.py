"""TensorRT's logger for the whole process, the errors it logs on each thread, and dims.

The one place hybridtrt hears TensorRT: ``tensorrt_build`` and ``tensorrt_run`` collect a
call's errors here to put TensorRT's own text into their failures.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, SupportsInt

from hybridtrt.trt import library

if TYPE_CHECKING:
    import tensorrt as trt
else:
    trt = library.bound()

__all__ = ["LOGGER", "capture_errors", "dims", "parser_logger"]

_LOG = logging.getLogger("hybridtrt.tensorrt")
_ERROR = int(trt.ILogger.Severity.ERROR)  # INTERNAL_ERROR is 0, ERROR 1
_WARNING = int(trt.ILogger.Severity.WARNING)


class _Logger(trt.ILogger):
    """Routes TensorRT's messages to Python logging and keeps this thread's errors."""

    def __init__(self) -> None:
        trt.ILogger.__init__(self)
        self._local = threading.local()

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        # TensorRT calls this for every message, verbose ones included (the ONNX parser logs
        # several per node): compare integer levels, and format nothing unless it is shown.
        level = int(severity)
        if level <= _ERROR:
            _LOG.debug("TensorRT error: %s", msg)  # surfaced through the failure that follows
            errors = getattr(self._local, "errors", None)
            if errors is not None:
                errors.append(msg)
        elif _LOG.isEnabledFor(logging.DEBUG):
            _LOG.debug("TensorRT warning: %s" if level == _WARNING else "TensorRT: %s", msg)

    @contextmanager
    def capturing(self) -> Iterator[list[str]]:
        previous = getattr(self._local, "errors", None)
        self._local.errors = []
        try:
            yield self._local.errors
        finally:
            self._local.errors = previous


LOGGER = _Logger()  # TensorRT wants one logger for the whole process
_QUIET = trt.Logger(trt.Logger.INTERNAL_ERROR)


def parser_logger() -> trt.ILogger:
    """The logger for an ONNX parser whose verdict comes from its error list, not its log.

    ``LOGGER`` while ``hybridtrt.tensorrt`` shows debug messages; else TensorRT's own logger,
    which drops messages below internal errors without calling into Python (the parser logs
    several verbose messages per node: through ``LOGGER`` they took half of a support check).
    """
    return LOGGER if _LOG.isEnabledFor(logging.DEBUG) else _QUIET


@contextmanager
def capture_errors() -> Iterator[list[str]]:
    """Collect the errors TensorRT logs on this thread inside the block."""
    with LOGGER.capturing() as errors:
        yield errors


def dims(shape: trt.Dims | Sequence[SupportsInt]) -> tuple[int, ...]:
    """A TensorRT shape as a tuple of ints (-1 for dynamic dimensions)."""
    return tuple(int(shape[k]) for k in range(len(shape)))
