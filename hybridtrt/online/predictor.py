"""The predictor ``create_predictor`` returns for online TensorRT: it converts at load, or first
runs in ONNX Runtime to collect shapes or calibration feeds, then converts."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridtrt.errors import InputError, InternalError
from hybridtrt.online.build import OnlineBuild
from hybridtrt.online.shapes import ShapeRecorder
from hybridtrt.runtime.config import RuntimeSettings
from hybridtrt.runtime.executors import RunStats
from hybridtrt.runtime.iobinding import IOBinding
from hybridtrt.runtime.plan import EnginePlacement
from hybridtrt.runtime.predictor import Predictor
from hybridtrt.runtime.segments import GraphStatus
from hybridtrt.trt.api import TrtBackend

__all__ = ["OnlinePredictor", "create_online_predictor"]

_LOG = logging.getLogger("hybridtrt.online")


def create_online_predictor(settings: RuntimeSettings) -> OnlinePredictor:
    """The predictor for ``settings.tensorrt``: built now, or after its collecting runs."""
    return OnlinePredictor(settings)


def _engine_cache(settings: RuntimeSettings, build: OnlineBuild) -> str | None:
    """Where engines built at load or rebuilt at run time go: the user's engine cache, else
    ``_opt_cache/engines/`` when ``use_static`` lets the model folder be written."""
    if settings.engine_cache_dir is not None or not build.online.use_static:
        return settings.engine_cache_dir
    return str(build.cache.engine_cache)


def _host_copy(name: str, value: Any) -> np.ndarray:
    """A host copy of one calibration feed."""
    try:
        return np.array(value, copy=True)
    except TypeError as exc:  # a device array (cupy, torch) refuses implicit host copies
        raise InputError(f"input '{name}': INT8 calibration keeps the feeds on the host; feed "
                         f"numpy arrays while the predictor calibrates (got "
                         f"{type(value).__name__})") from exc


class _Handle:
    """A Paddle-style input or output handle of an ``OnlinePredictor`` (survives the rebuild)."""

    def __init__(self, owner: OnlinePredictor, name: str, is_input: bool) -> None:
        self._owner, self.name, self._is_input = owner, name, is_input
        self.value: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None

    def reshape(self, shape: Sequence[int]) -> None:
        self._shape = tuple(int(d) for d in shape)

    def copy_from_cpu(self, data: np.ndarray) -> None:
        if not self._is_input:
            raise InputError(f"'{self.name}' is an output handle")
        array = np.asarray(data)
        if self._shape and array.shape != self._shape:
            if array.size != int(np.prod(self._shape)):
                raise InputError(f"input '{self.name}' was reshaped to {list(self._shape)} "
                                 f"({int(np.prod(self._shape))} values), but copy_from_cpu got an "
                                 f"array of shape {list(array.shape)} ({array.size} values)")
            array = array.reshape(self._shape)
        self.value = array

    def copy_to_cpu(self) -> np.ndarray:
        if self.name not in self._owner._results:
            raise InputError(f"no value for output '{self.name}': call predictor.run() first")
        return np.asarray(self._owner._results[self.name])

    def shape(self) -> list[int]:
        if self._is_input:
            return list(self.value.shape) if self.value is not None else list(self._shape or [])
        return list(self.copy_to_cpu().shape)


class OnlinePredictor:
    """Runs a plain ONNX model with TensorRT switched on at load (Paddle 2.x style).

    Phases: with ``collect_shape_range_info`` every run goes through ONNX Runtime and the shape
    file is rewritten; with Int8 calibration (no table yet) the first ``calibration_runs`` runs
    go through ONNX Runtime in FP32 while their feeds are kept, then INT8 is built from them
    (or at ``finish_calibration()``). Otherwise the hybrid model is built (or loaded from
    ``_opt_cache/``) when the predictor is made.
    """

    def __init__(self, settings: RuntimeSettings, backend: TrtBackend | None = None) -> None:
        online = settings.tensorrt
        if online is None:
            raise InternalError("OnlinePredictor made for settings without enable_tensorrt_engine")
        self._given, self._backend = settings, backend
        self.build = OnlineBuild(Path(settings.model_path), online, backend)
        self._settings = dataclasses.replace(
            settings, tensorrt=None, engine_cache_dir=_engine_cache(settings, self.build),
            allow_rebuild=settings.allow_rebuild or online.allow_build_at_runtime)
        self._results: dict[str, Any] = {}
        self._handles: dict[str, _Handle] = {}
        self._shapes: ShapeRecorder | None = None
        self._feeds: list[dict[str, np.ndarray]] | None = None
        if online.collect_shape_path:
            plain = self.build.plain()
            self._shapes = ShapeRecorder(plain.model, self.build.ranks)
            _LOG.info("online TensorRT: collecting tensor shapes to %s (running ONNX Runtime)",
                      online.collect_shape_path)
            self._inner = self._predictor(plain)
        elif self.build.needs_calibration():
            self._feeds = []
            _LOG.info("online TensorRT: calibrating INT8 on the first %d runs (FP32 in ONNX "
                      "Runtime meanwhile)", online.calibration_runs)
            self._inner = self._predictor(self.build.plain())
        else:
            self._inner = self._predictor(self.build.hybrid())

    def _predictor(self, hybrid: Any) -> Predictor:
        return Predictor(self._settings, hybrid=hybrid, backend=self._backend)

    @property
    def calibrating(self) -> bool:
        """Still collecting calibration feeds (running FP32)."""
        return self._feeds is not None

    def finish_calibration(self) -> None:
        """Calibrate on the feeds collected so far, write the table, and build INT8 now."""
        if self._feeds is None:
            raise InputError("finish_calibration(): this predictor is not calibrating (it "
                             "needs PrecisionType.Int8 with use_calib_mode=True and no table in "
                             "_opt_cache/ yet)")
        if not self._feeds:
            raise InputError("finish_calibration(): no run yet; run the predictor on real "
                             "inputs first, the calibration uses them")
        feeds, self._feeds = self._feeds, None
        _LOG.info("online TensorRT: calibrating on %d collected inputs", len(feeds))
        self._inner = self._predictor(self.build.hybrid(calibration=feeds))

    def run_dict(self, feeds: Mapping[str, Any] | None = None,
                 output_names: Sequence[str] | None = None,
                 *, device_outputs: bool = False) -> dict[str, Any]:
        """As ``Predictor.run_dict``; None runs on the input handles' values (Paddle style)."""
        paddle_style = feeds is None
        given = ({n: h.value for n, h in self._handles.items()
                  if h._is_input and h.value is not None}
                 if paddle_style else dict(feeds))  # type: ignore[arg-type]
        out = self._inner.run_dict(given, output_names, device_outputs=device_outputs)
        self._observe(given)
        if paddle_style:
            self._results = out
            return {}
        return out

    def _observe(self, feeds: dict[str, Any]) -> None:
        if self._shapes is not None:
            self._shapes.record(feeds)
            self._shapes.write(Path(self.build.online.collect_shape_path))  # type: ignore[arg-type]
        if self._feeds is not None:
            self._feeds.append({k: _host_copy(k, v) for k, v in feeds.items()})
            runs, wanted = len(self._feeds), self.build.online.calibration_runs
            if runs % max(1, wanted // 10) == 0:
                _LOG.info("online TensorRT: %d of %d calibration runs collected", runs, wanted)
            if runs >= wanted:
                self.finish_calibration()

    def run(self, output_names: Sequence[str] | None = None,
            input_feed: Mapping[str, Any] | None = None, run_options: Any = None) -> list[Any]:
        """As ``onnxruntime.InferenceSession.run``; no arguments: Paddle style (handles)."""
        if input_feed is None:
            self.run_dict()
            return []
        wanted = list(output_names) if output_names is not None else self.get_output_names()
        found = self.run_dict(input_feed, wanted)
        return [found[name] for name in wanted]

    def __call__(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        return self.run_dict(feeds)

    def get_input_names(self) -> list[str]:
        return self._inner.get_input_names()

    def get_output_names(self) -> list[str]:
        return self._inner.get_output_names()

    def get_input_handle(self, name: str) -> _Handle:
        return self._handle(name, True)

    def get_output_handle(self, name: str) -> _Handle:
        return self._handle(name, False)

    def _handle(self, name: str, is_input: bool) -> _Handle:
        names = self.get_input_names() if is_input else self.get_output_names()
        if name not in names:
            raise InputError(f"no {'input' if is_input else 'output'} named {name!r}; the "
                             f"model has {names}")
        return self._handles.setdefault(name, _Handle(self, name, is_input))

    def clone(self) -> OnlinePredictor:
        """Another predictor of the same settings, for another thread (the build is shared)."""
        return OnlinePredictor(self._given, self._backend)

    # What ``Predictor`` answers, asked of the predictor of the current phase ----------------

    def io_binding(self) -> IOBinding:
        """As ``Predictor.io_binding``."""
        return self._inner.io_binding()

    def run_with_iobinding(self, iobinding: IOBinding, run_options: Any = None) -> None:
        """As ``Predictor.run_with_iobinding`` (collecting phases observe these runs too), but
        outputs bound on CUDA are device arrays of the caller's own (``run_dict``'s
        ``device_outputs``), not views of the predictor's buffers."""
        iobinding.run(lambda feeds, names, on_device: self.run_dict(
            feeds, names, device_outputs=on_device))

    def get_providers(self) -> list[str]:
        """As ``Predictor.get_providers``."""
        return self._inner.get_providers()

    def get_modelmeta(self) -> Any:
        """As ``Predictor.get_modelmeta``."""
        return self._inner.get_modelmeta()

    def run_stats(self) -> RunStats:
        """As ``Predictor.run_stats`` (of the current phase's predictor)."""
        return self._inner.run_stats()

    def graph_status(self) -> list[GraphStatus]:
        """As ``Predictor.graph_status``."""
        return self._inner.graph_status()

    def end_profiling(self) -> dict[str, str]:
        """As ``Predictor.end_profiling``."""
        return self._inner.end_profiling()

    def engine_status(self) -> list[EnginePlacement]:
        """Where each engine made at load runs (empty while collecting or calibrating)."""
        return self._inner.engine_status()

    def get_inputs(self) -> list[Any]:
        return self._inner.get_inputs()

    def get_outputs(self) -> list[Any]:
        return self._inner.get_outputs()
