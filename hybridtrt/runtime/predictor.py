"""The Predictor: runs a hybrid model segment by segment over a ``{name: value}`` environment."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from hybridtrt.core.hybrid import HybridModel, load
from hybridtrt.core.references import tensor_values
from hybridtrt.errors import ConfigError, InputError
from hybridtrt.runtime.checks import InputChecks
from hybridtrt.runtime.config import Config, RuntimeSettings
from hybridtrt.runtime.description import ModelMetadata, NodeArg, model_metadata, node_arg
from hybridtrt.runtime.devices import CudaDevice, open_device
from hybridtrt.runtime.executors import (Executor, Loop, Replaying, RunStats, SegmentObserver,
                                         SingleSession, run_stats)
from hybridtrt.runtime.graphs import unsynced_safe
from hybridtrt.runtime.iobinding import IOBinding
from hybridtrt.runtime.placement import kept_on_host, output_places
from hybridtrt.runtime.plan import EnginePlacement, Plan, SegmentSpec, make_plan
from hybridtrt.runtime.replay import Replays
from hybridtrt.runtime.segments import (EngineStep, GraphStatus, OrtSegment, Segment, graph_status,
                                        open_session)
from hybridtrt.runtime.trt_segment import EngineSegment
from hybridtrt.trt.api import TrtBackend

__all__ = ["ModelMetadata", "NodeArg", "Predictor", "SegmentObserver", "Tensor"]

_LOG = logging.getLogger("hybridtrt")

_HOST, _COPY, _VIEW = "host", "copy", "view"  # how a run hands its outputs out (``_run``)



class Predictor:
    """Runs a saved hybrid model: engines in TensorRT where usable, everything else in ORT.

    Args:
        settings: A runtime configuration snapshot (``Config.settings()``), or a ``Config``.
        hybrid: An already loaded model (used by ``clone``; read from the settings' path otherwise).
        plan: An already made plan (used by ``clone``).
        backend: TensorRT behind its narrow interface (default: the installed one, if any).
    """

    def __init__(self, settings: RuntimeSettings | Config, hybrid: HybridModel | None = None,
                 plan: Plan | None = None, backend: TrtBackend | None = None) -> None:
        self.settings = settings.settings() if isinstance(settings, Config) else settings
        self.hybrid = hybrid or load(self.settings.model_path)
        self.plan = plan or make_plan(self.hybrid, self.settings, backend)
        # With one segment there is nothing to share a stream with: ORT's own stream is faster.
        # With CUDA graphs the stream is shared all the same: the device copies a caller's
        # arrays into the buffers the graph reads, ordered on the device before its replay.
        share = self.settings.share_cuda_stream and (len(self.plan.segments) > 1
                                                     or self.settings.cuda_graph)
        if self.settings.cuda_graph and not self.settings.use_gpu:
            raise ConfigError("CUDA graphs need the GPU: call config.enable_use_gpu() too, or "
                              "drop config.enable_cuda_graph()")
        self.device = open_device(self.settings.use_gpu, self.settings.device_id,
                                  self.settings.gpu_memory_mb, self.settings.intra_op_threads,
                                  share, self.settings.cuda_graph)
        self._segments = self._make_segments()
        graph = self.hybrid.model.graph
        initializers = {t.name for t in graph.initializer}
        self._inputs = [node_arg(v) for v in graph.input if v.name not in initializers]
        self._outputs = [node_arg(v) for v in graph.output]
        self._constants = {t.name: t for t in graph.initializer}
        self._input_names = [i.name for i in self._inputs]
        self._output_names = [o.name for o in self._outputs]
        self._output_set = frozenset(self._output_names)
        # inputs several segments read: staged once per run (``InputChecks.accepted``)
        shared = [i.name for i in self._inputs
                  if sum(i.name in s.inputs for s in self.plan.segments) > 1]
        cuda = self.device if isinstance(self.device, CudaDevice) else None
        self.input_checks = InputChecks(
            self._inputs, [(r.name, r.input_names, r.profiles) for r in self.hybrid.engines],
            self.device, self.settings.allow_rebuild, shared, cuda.staged if cuda is not None else None)
        self._loop = Loop(self._segments, self.plan.last_use, self._constant, self.input_checks)
        # (a one-segment plan replays too with CUDA graphs: a replay skips the loop's steps)
        replayed = cuda is not None and (len(self._segments) > 1 or cuda.graphs)
        self._replays = (Replays(cuda, len(self._segments), cuda.graphs)
                         if cuda is not None and replayed else None)
        self._chosen = self._executor()
        self._run_path: Executor = self._chosen
        self._handles: dict[str, Tensor] = {}
        self._results: dict[str, Any] = {}
        if hybrid is None:
            self._announce()

    def _make_segments(self) -> list[Segment]:
        """The plan's segments: engines that run in TensorRT, ORT sessions for the rest."""
        specs = self.plan.segments
        engines = {s.name: self._engine(s) for s in specs if s.kind == "engine"}
        sessions = {s.name: open_session(s, self.device, self.settings.intra_op_threads,
                                         self.settings.ort_profile_prefix)
                    for s in specs if engines.get(s.name) is None}
        kept: list[frozenset[str]] = [frozenset()] * len(specs)
        if self.device.name == "cuda" and len(specs) > 1:
            # Values that ORT writes in host memory and only ORT segments read stay there
            # (``placement``): no copy to the device and back, which would wait for the stream.
            places = [output_places(sessions[s.name][0])
                      if s.name in sessions and not sessions[s.name][1].captured else None
                      for s in specs]
            outputs = {o.name for o in self.hybrid.model.graph.output}
            kept = kept_on_host(specs, places, outputs)
        made: list[Segment] = []
        for position, spec in enumerate(specs):
            engine = engines.get(spec.name)
            if engine is not None:
                made.append(EngineStep(spec, engine))
                continue
            # Segments followed by others on the stream need not wait for their work
            # (``graphs.unsynced_safe``); the last does, and reading any value on the host or
            # handing it to the caller waits for the stream (``to_host``).
            sync = not (self.device.may_skip_sync and position < len(specs) - 1
                        and unsynced_safe(spec.model))
            session, graph = sessions[spec.name]
            made.append(OrtSegment(spec, session, graph.captured, self.device, sync,
                                   kept[position], graph))
        return made

    def _engine(self, spec: SegmentSpec) -> EngineSegment | None:
        """The engine of an engine segment that runs in TensorRT (None: it runs in ORT)."""
        loaded = self.plan.engines.get(spec.name)
        if loaded is None:
            return None
        record, loader = spec.engine, self.plan.loader
        rebuild = None
        if self.settings.allow_rebuild and loader is not None and record is not None:
            rebuild = functools.partial(loader.rebuild, record, spec.model)
        profiler = self.settings.tensorrt_profiler
        report = functools.partial(profiler, spec.name) if profiler is not None else None
        return EngineSegment(spec.name, loaded.engine, loaded.profiles, self.device, rebuild,
                             report)

    def _executor(self) -> Executor:
        """The run path for this plan and device (``executors`` names them)."""
        if self._replays is not None and isinstance(self.device, CudaDevice):
            return Replaying(self._loop, self._replays, self.device, self._input_names,
                             self._output_names)
        only = self._segments[0] if len(self._segments) == 1 else None
        if (isinstance(only, OrtSegment) and not only.graph and only.spec.engine is None
                and set(only.spec.inputs) == set(self._input_names)
                and set(only.spec.outputs) == set(self._output_names)):
            return SingleSession(self._loop, only, self._output_names, self.input_checks,
                                 self.device)
        return self._loop

    def _announce(self) -> None:
        for placement in self.plan.placements:
            if placement.runs_in != "tensorrt":
                how = "its own ORT segment" if placement.isolated else "ONNX Runtime (inlined)"
                _LOG.warning("engine %s runs in %s: %s", placement.name, how, placement.reason)
            else:
                _LOG.info("engine %s runs in TensorRT (%s)", placement.name, placement.reason)

    # ONNX Runtime style ---------------------------------------------------------------------

    def get_inputs(self) -> list[NodeArg]:
        """The model's inputs (initializers left out), as ``InferenceSession.get_inputs()``."""
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        """The model's outputs, as ``InferenceSession.get_outputs()``."""
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        """The ONNX Runtime execution providers the ORT segments run on, led by ``"TensorRT"``
        when an engine runs in TensorRT."""
        names = [p if isinstance(p, str) else p[0] for p in self.device.providers()]
        if "CPUExecutionProvider" not in names:
            names.append("CPUExecutionProvider")  # (ORT always adds it)
        if any(p.runs_in == "tensorrt" for p in self.plan.placements):
            names.insert(0, "TensorRT")
        return names

    def get_modelmeta(self) -> ModelMetadata:
        """The original model's metadata, as ``InferenceSession.get_modelmeta()``."""
        return model_metadata(self.hybrid.model)

    def run(self, output_names: Sequence[str] | None = None,
            input_feed: Mapping[str, Any] | None = None, run_options: Any = None) -> list[Any]:
        """Run the model as ``onnxruntime.InferenceSession.run`` does.

        Args:
            output_names: Outputs to return, in this order (None: all, in the model's order).
            input_feed: ``{input name: array}`` (see ``run_dict``). With neither argument the
                run is Paddle style: on the input handles' values, read the output handles.
            run_options: Accepted for ONNX Runtime compatibility (its ``RunOptions``); unused.

        Returns:
            The outputs' arrays, in ``output_names`` order (empty when called Paddle style).
        """
        if isinstance(output_names, Mapping) or isinstance(output_names, str):
            raise InputError("run(output_names, input_feed) takes a list of output names (or None) "
                             "first and the feeds second, as ONNX Runtime's: call "
                             "run(None, feeds), or run_dict(feeds) for {name: array}")
        if input_feed is None:
            if output_names is not None:
                raise InputError("run() needs input_feed, {input name: array}")
            self.run_dict()
            return []
        if output_names is None:
            found = self.run_dict(input_feed)
            return [found[name] for name in self._output_names]
        wanted = list(output_names)
        found = self.run_dict(input_feed, wanted)
        return [found[name] for name in wanted]

    def io_binding(self) -> IOBinding:
        """Bound inputs and outputs, as ``InferenceSession.io_binding()``; run them with
        ``run_with_iobinding``."""
        return IOBinding([i.name for i in self.get_inputs()], self._output_names,
                         self.settings.use_gpu)

    def run_with_iobinding(self, iobinding: IOBinding, run_options: Any = None) -> None:
        """Run on ``iobinding``'s inputs; read its outputs (``run_options`` is unused). Outputs
        bound on CUDA are the predictor's own buffers, as ORT's are: the next run rewrites them."""
        iobinding.run(lambda feeds, names, on_device: self._run(
            feeds, names, _VIEW if on_device else _HOST))

    def __call__(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """``run_dict(feeds)``: every output as ``{name: array}``."""
        return self.run_dict(feeds)

    def run_dict(self, feeds: Mapping[str, Any] | None = None,
                 output_names: Sequence[str] | None = None,
                 *, device_outputs: bool = False) -> dict[str, Any]:
        """Run the model, feeds and outputs by name.

        Args:
            feeds: ``{input name: array}``; numpy arrays, or on GPU any array with
                ``__cuda_array_interface__`` (cupy, torch), taken without a copy. None runs
                the Paddle-style way, on the inputs copied into the input handles.
            output_names: Outputs to return (default: all).
            device_outputs: On GPU, return device arrays of the caller's own (copied on the
                device; cupy arrays where cupy is installed) instead of numpy.

        Returns:
            ``{output name: array}`` (empty when called Paddle-style; read the output handles).
        """
        return self._run(feeds, output_names, _COPY if device_outputs else _HOST)

    def _run(self, feeds: Mapping[str, Any] | None, output_names: Sequence[str] | None,
             hand_out: str) -> dict[str, Any]:
        """``run_dict``, the outputs handed out as ``hand_out`` says (``_HOST``, ``_COPY``: a
        device array of the caller's own, ``_VIEW``: a device array over the predictor's)."""
        host = hand_out == _HOST
        if feeds is not None and output_names is None:
            done = self._run_path.run_usual(feeds, host)  # every output
            if done is not None:
                return self._hand_out(done, self._output_names, hand_out)
        paddle_style = feeds is None
        given = ({n: h.value for n, h in self._handles.items() if h.value is not None}
                 if feeds is None else dict(feeds))
        wanted = list(output_names) if output_names is not None else list(self._output_names)
        if output_names is not None and not self._output_set.issuperset(wanted):
            unknown = [n for n in wanted if n not in self._output_set]
            raise InputError(f"unknown outputs {unknown} (the model's outputs are "
                             f"{self._output_names})")
        usual = given if output_names is None and not paddle_style else None
        values = self._run_path.run(self.input_checks.accepted(given), wanted, host, usual)
        if paddle_style:
            self._results = values
            return {}
        return self._hand_out(values, wanted, hand_out)

    def _hand_out(self, values: Mapping[str, Any], names: Sequence[str],
                  hand_out: str) -> dict[str, Any]:
        device = self.device
        if hand_out == _HOST or not isinstance(device, CudaDevice):
            convert = device.to_host
        else:
            convert = device.to_device_array if hand_out == _COPY else device.device_view
        return {name: convert(values[name]) for name in names}

    def _constant(self, name: str) -> Any:
        tensor = self._constants.get(name)
        if tensor is None:
            raise InputError(f"no value for tensor '{name}'")
        return self.device.accept(name, tensor_values(tensor))

    # Paddle style ---------------------------------------------------------------------------

    def get_input_names(self) -> list[str]:
        return [i.name for i in self._inputs]

    def get_output_names(self) -> list[str]:
        return [o.name for o in self._outputs]

    def get_input_handle(self, name: str) -> Tensor:
        if name not in self.get_input_names():
            raise InputError(f"'{name}' is not a model input; inputs are {self.get_input_names()}")
        return self._handles.setdefault(name, Tensor(self, name, is_input=True))

    def get_output_handle(self, name: str) -> Tensor:
        if name not in self.get_output_names():
            raise InputError(f"'{name}' is not a model output; outputs are {self.get_output_names()}")
        return Tensor(self, name, is_input=False)

    def clone(self) -> Predictor:
        """Another predictor over the same loaded model and plan, for another thread."""
        return Predictor(self.settings, self.hybrid, self.plan)

    def engine_status(self) -> list[EnginePlacement]:
        """Where each engine runs (``tensorrt`` or ``onnxruntime``) and why, with whether the
        segments it runs in are captured as CUDA graphs (``graph_status``)."""
        statuses = {s.segment: s for s in self.graph_status()}
        records = {r.name: r for r in self.hybrid.engines}
        found = []
        for placement in self.plan.placements:
            if placement.runs_in == "tensorrt" or placement.isolated:
                names = [placement.name]  # its own segment
            else:  # inlined: the ORT segments holding its nodes
                written = {o for n in records[placement.name].subgraph.node for o in n.output if o}
                names = [s.name for s in self.plan.segments if s.kind == "ort"
                         and any(o in written for n in s.model.graph.node for o in n.output)]
            graphs = tuple(statuses[n] for n in names if n in statuses)
            found.append(dataclasses.replace(placement, graphs=graphs))
        return found

    def run_stats(self) -> RunStats:
        """What this predictor's runs did so far: replays, bound runs, host copies..."""
        return run_stats(self.device, self._replays)

    def graph_status(self) -> list[GraphStatus]:
        """Per segment, whether its runs are captured as a CUDA graph and if not, why."""
        return [graph_status(s, self.device) for s in self._segments]

    def segments(self) -> list[SegmentSpec]:
        """The plan's segments in run order."""
        return list(self.plan.segments)

    def set_segment_observer(self, observer: SegmentObserver | None) -> None:
        """Call ``observer.before``/``after`` around every segment run (None: stop); observed
        runs take the plain loop (``executors.Loop``)."""
        self._loop.observer = observer
        self._run_path = self._chosen if observer is None else self._loop

    def end_profiling(self) -> dict[str, str]:
        """Stop ONNX Runtime's profiler (``Config.enable_profile``) in every ORT segment.

        Returns:
            ``{segment name: path of its ORT profile JSON}``.
        """
        if self.settings.ort_profile_prefix is None:
            raise ConfigError("profiling is off: call config.enable_profile() before "
                              "create_predictor()")
        return {s.spec.name: s.session.end_profiling() for s in self._segments
                if isinstance(s, OrtSegment)}


class Tensor:
    """A Paddle-style input or output handle."""

    def __init__(self, predictor: Predictor, name: str, is_input: bool) -> None:
        self._predictor = predictor
        self.name = name
        self._is_input = is_input
        self.value: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None

    def reshape(self, shape: Sequence[int]) -> None:
        self._shape = tuple(int(d) for d in shape)

    def copy_from_cpu(self, data: np.ndarray) -> None:
        if not self._is_input:
            raise InputError(f"'{self.name}' is an output handle")
        array = np.asarray(data)
        if self._shape is not None and array.shape != self._shape:
            try:
                array = array.reshape(self._shape)
            except ValueError:
                raise InputError(
                    f"input '{self.name}' was reshaped to {list(self._shape)}, but copy_from_cpu "
                    f"got an array of shape {list(array.shape)} ({array.size} values): reshape "
                    "the handle to the array's shape, or pass an array of that size") from None
        self.value = array

    def copy_to_cpu(self) -> np.ndarray:
        results = self._predictor._results
        if self.name not in results:
            raise InputError(f"no value for output '{self.name}': call predictor.run() first")
        return self._predictor.device.to_host(results[self.name])

    def shape(self) -> list[int]:
        if self._is_input:
            return list(self.value.shape) if self.value is not None else list(self._shape or [])
        return list(self.copy_to_cpu().shape)
