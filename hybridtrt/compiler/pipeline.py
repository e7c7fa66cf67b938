"""``convert``: load -> capability -> partition -> shape ranges -> engines -> rewrite -> save;
``analyze``: the same steps up to the report."""

from __future__ import annotations

import gc
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import onnx

from hybridtrt.compiler.clustering import Clustering, cluster
from hybridtrt.compiler.steps import ANALYSIS, STEPS, Run, Step, run_steps
from hybridtrt.config import TensorRTConfig
from hybridtrt.core.hybrid import HybridModel
from hybridtrt.core.report import Report
from hybridtrt.trt.engine import EngineBuilder

__all__ = ["Clustering", "analyze", "analyze_clusters", "cluster", "convert"]


class _CollectorPause:
    """Python's cyclic garbage collector, paused while any conversion runs.

    Conversion allocates millions of small, acyclic objects (protos, tuples, dict entries);
    with the collector running, full collections over them made large models superlinear.
    Reference counting still frees everything. Conversions in several threads share one
    pause: the collector's previous state comes back when the last of them ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._was_enabled = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            if self._running == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0 and self._was_enabled:
                    gc.enable()


_COLLECTOR = _CollectorPause()


def _execute(run: Run, steps: Sequence[Step]) -> Run:
    with _COLLECTOR.paused():
        run_steps(run, steps)
    return run


def convert(
    model: onnx.ModelProto | str | os.PathLike[str],
    config: TensorRTConfig | None = None,
    *,
    builder: EngineBuilder | None = None,
) -> HybridModel:
    """Turn an ONNX model into a hybrid model of TensorRT engines and ONNX Runtime nodes.

    Args:
        model: Path of an ``.onnx`` file (external data included) or a ModelProto.
        config: Shape ranges and build settings; the default suits fully static models.
        builder: Engine builder (default: TensorRT when usable, else engines are left unbuilt).

    Returns:
        The hybrid model (``stage_seconds``: how long each step took); also saved to
        ``config.save_model_dir`` when that is set.

    Raises:
        ModelLoadError, InputError, ConfigError, UnsupportedModelError, SaveError.

    Example:
        >>> hybrid = convert("model.onnx", TensorRTConfig(inputs=[]))  # doctest: +SKIP
        >>> hybrid.save("model.hybrid.onnx")  # doctest: +SKIP
    """
    with tempfile.TemporaryDirectory(prefix="hybridtrt-plans-") as spill:  # gone once in nodes
        run = _execute(Run(model, config or TensorRTConfig(), building=True, builder=builder,
                           spill=Path(spill)), STEPS)
    run.hybrid.stage_seconds = dict(run.seconds)
    return run.hybrid


def analyze(
    model: onnx.ModelProto | str | os.PathLike[str], config: TensorRTConfig | None = None
) -> Report:
    """The partition report of ``model`` without building or saving anything.

    Shape ranges are recorded only when ``config.inputs`` gives them (or the model is static).
    """
    return analyze_clusters(model, config)[0]


def analyze_clusters(
    model: onnx.ModelProto | str | os.PathLike[str], config: TensorRTConfig | None = None
) -> tuple[Report, Clustering]:
    """``analyze``'s report, and the clusters it describes (one per engine, in order)."""
    run = _execute(Run(model, config or TensorRTConfig(), building=False), ANALYSIS)
    return run.report, run.clustering
