"""The Predictor: runs a hybrid model segment by segment over a ``{name: value}`` environment."""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import onnx

from hybridtrt.compiler.hybrid import HybridModel, load
from hybridtrt.errors import ConfigError, ExecutionError, HybridTRTError, InputError, InternalError
from hybridtrt.ort_support import first_line, runnable_bytes
from hybridtrt.runtime.config import Config, RuntimeSettings
from hybridtrt.runtime.description import ModelMetadata, NodeArg, model_metadata, node_arg
from hybridtrt.runtime.device import Device, dtype_of, open_device
from hybridtrt.runtime.graphs import (DISABLED_FUSIONS, graph_model, graph_safe, single_graph,
                                      unsynced_safe)
from hybridtrt.runtime.iobinding import IOBinding
from hybridtrt.runtime.placement import kept_on_host, output_places
from hybridtrt.runtime.plan import EnginePlacement, Plan, SegmentSpec, make_plan
from hybridtrt.runtime.replay import Replays
from hybridtrt.runtime.trt_segment import EngineSegment, outside_profiles
from hybridtrt.trt.api import TrtBackend
from hybridtrt.trt.profiles import select_profile

__all__ = ["ModelMetadata", "NodeArg", "Predictor", "SegmentObserver", "Tensor", "create_predictor"]

_LOG = logging.getLogger("hybridtrt")



def _file_part(name: str) -> str:
    """``name`` (from a model file) made safe as part of a file name: no folders, no dots first."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "_"

class SegmentObserver(Protocol):
    """Watches each segment run (the bench, profile and compare tools implement it)."""

    def before(self, position: int, spec: SegmentSpec) -> None:
        """Called just before segment ``position`` runs."""

    def after(self, position: int, spec: SegmentSpec, inputs: Mapping[str, Any],
              outputs: Sequence[Any]) -> None:
        """Called just after it ran, with its inputs and outputs as the device holds them."""


class _Segment:
    """One ORT session over a segment's model, run through the predictor's device."""

    sync = True  # False: its runs may skip ORT's stream sync (set by the predictor)
    host_values: frozenset[str] = frozenset()  # outputs bound in host memory (set by the predictor)

    def run(self, device: Device, inputs: Mapping[str, Any], to_host: frozenset[str]) -> list[Any]:
        return device.run(self.session, inputs, self.spec.outputs, to_host, self.graph, self.sync,
                          self.host_values)

    def __init__(self, spec: SegmentSpec, device: Device, threads: int,
                 profile_prefix: str | None = None) -> None:
        import onnxruntime as ort

        self.spec = spec
        options = ort.SessionOptions()
        # Fatal only: errors come back as exceptions, which the predictor reports; a bound run
        # that fails and is made again fresh (see ``bound``) should not print an error.
        options.log_severity_level = 4
        if threads:
            options.intra_op_num_threads = threads
        if profile_prefix is not None:
            options.enable_profiling = True
            options.profile_file_prefix = f"{profile_prefix}{_file_part(spec.name)}"
        graphed = graph_model(spec.model) if getattr(device, "graphs", False) else None
        self.graph = graphed is not None and graph_safe(graphed)
        if graphed is not None and self.graph:
            try:  # ORT refuses when a node would run on the CPU: then no graph
                self.session = ort.InferenceSession(
                    runnable_bytes(graphed), options, providers=device.providers(True),
                    disabled_optimizers=DISABLED_FUSIONS)
            except Exception:  # noqa: BLE001 - ORT raises its own untyped errors
                self.graph = False
            if self.graph and single_graph(spec.model):
                device.limit_graphs(self.session)  # type: ignore[attr-defined]
        if not self.graph:
            try:
                self.session = ort.InferenceSession(runnable_bytes(spec.model), options,
                                                    providers=device.providers())
            except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
                raise ConfigError(
                    f"ONNX Runtime cannot load segment {spec.name}: {first_line(exc)}") from exc


class _EngineStep:
    """A TensorRT engine segment in the predictor's run loop."""

    def __init__(self, spec: SegmentSpec, engine: EngineSegment) -> None:
        self.spec = spec
        self.engine = engine

    def run(self, device: Device, inputs: Mapping[str, Any], to_host: frozenset[str]) -> list[Any]:
        return self.engine.run(inputs, self.spec.outputs)


def create_predictor(config: Config) -> Predictor:
    """Load the hybrid model named by ``config`` and plan its segments (Paddle style).

    With ``config.enable_tensorrt_engine(...)`` the model is a plain ONNX model, converted at
    load by ``hybridtrt.online`` (which returns an ``OnlinePredictor``).
    """
    settings = config.settings()
    if settings.tensorrt is not None:
        from hybridtrt.online.predictor import create_online_predictor  # the compiler, lazily
        return create_online_predictor(settings)  # type: ignore[return-value]
    return Predictor(settings)


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
        share = self.settings.share_cuda_stream and len(self.plan.segments) > 1
        if self.settings.cuda_graph and not self.settings.use_gpu:
            raise ConfigError("CUDA graphs need the GPU: call config.enable_use_gpu() too, or "
                              "drop config.enable_cuda_graph()")
        self.device = open_device(self.settings.use_gpu, self.settings.device_id,
                                  self.settings.gpu_memory_mb, self.settings.intra_op_threads,
                                  share, self.settings.cuda_graph)
        self._segments = [self._segment(s) for s in self.plan.segments]
        if getattr(self.device, "may_skip_sync", False):
            # Segments followed by others on the stream need not wait for their work
            # (``graphs.unsynced_safe``); the last ORT segment does, and reading any value on
            # the host or handing it to the caller waits for the stream (``to_host``).
            for segment in self._segments[:-1]:
                if isinstance(segment, _Segment) and unsynced_safe(segment.spec.model):
                    segment.sync = False
        if self.device.name == "cuda" and len(self._segments) > 1:
            self._keep_host_values()
        self._replays = (Replays(self.device, len(self._segments))  # type: ignore[arg-type]
                         if hasattr(self.device, "begin_trace") and len(self._segments) > 1 else None)
        graph = self.hybrid.model.graph
        initializers = {t.name for t in graph.initializer}
        self._inputs = [node_arg(v) for v in graph.input if v.name not in initializers]
        self._outputs = [node_arg(v) for v in graph.output]
        self._constants = {t.name: t for t in graph.initializer}
        # inputs several segments read: staged once per run (``_check_feeds``)
        self._shared_inputs = [i.name for i in self._inputs
                               if sum(i.name in s.inputs for s in self.plan.segments) > 1]
        self._stage = getattr(self.device, "staged", None)
        read_later: set[str] = set()
        self._caller_only: list[frozenset[str]] = []
        for spec in reversed(self.plan.segments):  # outputs no later segment reads
            self._caller_only.append(frozenset(o for o in spec.outputs if o not in read_later))
            read_later.update(spec.inputs)
        self._caller_only.reverse()
        self._handles: dict[str, Tensor] = {}
        self._results: dict[str, Any] = {}
        # the replay key of the last usual run and its arrays' ``_host_signature``: ``_run_hot``
        self._hot: tuple[Any, _Signature] | None = None
        self._observer: SegmentObserver | None = None
        self._fitting: set[tuple[tuple[str, tuple[int, ...]], ...]] = set()  # input shapes known to fit
        self._checked: set[_Signature] = set()  # (dtype, shape) per input, all checks passed
        self._fitting_segments: set[tuple[str, tuple[tuple[int, ...], ...]]] = set()
        self._input_names = [i.name for i in self._inputs]
        self._input_set = frozenset(self._input_names)
        self._output_names = [o.name for o in self._outputs]
        self._output_set = frozenset(self._output_names)
        only = self._segments[0] if len(self._segments) == 1 else None
        # ``run``'s short way: one ORT segment that reads exactly the inputs and gives the outputs
        self._one = only if (isinstance(only, _Segment) and not only.graph
                             and only.spec.engine is None
                             and set(only.spec.inputs) == set(self._input_names)
                             and set(only.spec.outputs) == set(self._output_names)) else None
        self._one_host = frozenset(self._output_names)  # (its outputs all go to the caller)
        if hybrid is None:
            self._announce()

    def _keep_host_values(self) -> None:
        """Values that ORT writes in host memory and only ORT segments read stay there
        (``placement``): no copy to the device and back, which would wait for the stream."""
        places = [output_places(s.session) if isinstance(s, _Segment) and not s.graph else None
                  for s in self._segments]
        outputs = {o.name for o in self.hybrid.model.graph.output}
        for segment, kept in zip(self._segments, kept_on_host(self.plan.segments, places, outputs)):
            if kept:
                segment.host_values = kept  # type: ignore[union-attr]  # (ORT segments only)

    def _segment(self, spec: SegmentSpec) -> _Segment | _EngineStep:
        loaded = self.plan.engines.get(spec.name) if spec.kind == "engine" else None
        if loaded is None:
            return _Segment(spec, self.device, self.settings.intra_op_threads,
                            self.settings.ort_profile_prefix)
        record, loader = spec.engine, self.plan.loader
        rebuild = None
        if self.settings.allow_rebuild and loader is not None and record is not None:
            rebuild = functools.partial(loader.rebuild, record, spec.model)
        profiler = self.settings.tensorrt_profiler
        report = functools.partial(profiler, spec.name) if profiler is not None else None
        memory = self.device
        if not hasattr(memory, "allocate"):
            raise InternalError(f"device {self.device.name} cannot hold TensorRT tensors")
        return _EngineStep(spec, EngineSegment(spec.name, loaded.engine, loaded.profiles,
                                               memory, rebuild, report))  # type: ignore[arg-type]

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
        """Run on ``iobinding``'s inputs; read its outputs (``run_options`` is unused)."""
        iobinding.run(self.run_dict)

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
            device_outputs: On GPU, return zero-copy device arrays instead of numpy.

        Returns:
            ``{output name: array}`` (empty when called Paddle-style; read the output handles).
        """
        one = self._one
        usual = (feeds is not None and output_names is None and not device_outputs
                 and self._observer is None)  # every output, to the host
        if usual and one is not None:
            return self._run_one(one, feeds if type(feeds) is dict else dict(feeds))  # type: ignore[arg-type]
        if usual and self._hot is not None and type(feeds) is dict:
            done = self._run_hot(feeds)
            if done is not None:
                return done
        paddle_style = feeds is None
        given = {n: h.value for n, h in self._handles.items() if h.value is not None} if paddle_style else dict(feeds)  # type: ignore[arg-type]
        wanted = list(output_names) if output_names is not None else list(self._output_names)
        if output_names is not None and not self._output_set.issuperset(wanted):
            unknown = [n for n in wanted if n not in self._output_set]
            raise InputError(f"unknown outputs {unknown} (the model's outputs are "
                             f"{self._output_names})")
        values = self._execute(self._check_feeds(given), wanted, host=not device_outputs,
                               usual=given if usual else None)
        if paddle_style:
            self._results = values
            return {}
        convert = self.device.to_device_array if device_outputs and hasattr(self.device, "to_device_array") else self.device.to_host  # type: ignore[attr-defined]
        return {name: convert(values[name]) for name in wanted}

    def _run_one(self, segment: _Segment, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """``run`` of a plan that is one ORT segment reading every input and giving every
        output (a model with no engine in TensorRT), all outputs wanted on the host: the same
        checks and run, with none of the bookkeeping between segments; host arrays of dtypes
        and shapes that passed the checks before (``_checked``) go straight to the session.
        (Right after a GPU run the host's caches are cold, and each Python step costs several
        times more than in a tight loop.)"""
        to_host = self.device.to_host
        if _host_signature(feeds, self._input_names) in self._checked:
            # What the device's run does for host in, host out (a plain ORT run), without the
            # checks and steps around it.
            try:
                values = segment.session.run(self._output_names, feeds)
            except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
                raise _failed(segment.spec, exc) from exc
            self.device.count_copies(len(feeds) + len(values))  # type: ignore[attr-defined]
            return {name: to_host(v) for name, v in zip(self._output_names, values)}
        accepted = self._check_feeds(feeds)
        try:
            values = segment.run(self.device, accepted, self._one_host)
        except HybridTRTError:
            raise
        except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
            raise _failed(segment.spec, exc) from exc
        found = dict(zip(segment.spec.outputs, values))
        return {name: to_host(found[name]) for name in self._output_names}

    def _check_feeds(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        names = self._input_names
        if feeds.keys() != self._input_set:
            missing = [n for n in names if n not in feeds]
            extra = sorted(set(feeds) - set(names))
            parts = ([f"missing inputs {missing}"] if missing else []) + (
                [f"unknown inputs {extra} (the model's inputs are {names})"] if extra else [])
            raise InputError("; ".join(parts))
        accept = self.device.accept
        accepted = {name: accept(name, feeds[name]) for name in names}
        # Arrays of a dtype and shape seen before passed every check: skip them (hot path).
        signature = tuple([(getattr(v, "dtype", None), getattr(v, "shape", None))
                           for v in accepted.values()])
        if signature not in self._checked:
            for spec in self._inputs:
                value = accepted[spec.name]
                if spec.dtype is not None:
                    _check_value(spec, value, self.device.shape_of(value))
            self._check_profiles(accepted)
            if len(self._checked) < 64 and all(isinstance(v, np.ndarray) for v in accepted.values()):
                self._checked.add(signature)
        # Only now, once the inputs passed: host arrays that several segments read go to the
        # device once, into buffers kept per shape (a refused call must not take one).
        if self._stage is not None:
            for name in self._shared_inputs:
                accepted[name] = self._stage(name, accepted[name])
        return accepted

    def _check_profiles(self, feeds: Mapping[str, Any]) -> None:
        """Model inputs that feed an engine directly must fit one of its profiles.

        Checked for every engine, inlined fallback ones included, so a shape that TensorRT
        would refuse is refused everywhere, not only on a TensorRT host (unless rebuilds for
        new shapes are allowed).
        """
        if self.settings.allow_rebuild:
            return
        shapes = tuple((n, self.device.shape_of(v)) for n, v in feeds.items())
        if shapes in self._fitting:
            return  # these input shapes were checked already
        for record in self.hybrid.engines:
            if not record.profiles:
                continue
            direct = [n for n in record.input_names if n in feeds]
            if direct:
                _require_fit(record.name, {n: self.device.shape_of(feeds[n]) for n in direct},
                             record.profiles)
        if len(self._fitting) < 64:
            self._fitting.add(shapes)

    def _run_hot(self, feeds: dict[str, Any]) -> dict[str, Any] | None:
        """``run`` of every output to the host on host arrays (C order) of the dtypes and shapes
        that the last such run replayed or recorded with: they passed every input check then,
        so the replay runs at once. None: other arrays, or the replay is gone (``run`` goes the
        usual way, which checks them and reports any error)."""
        key, known = self._hot  # type: ignore[misc]
        if _host_signature(feeds, self._input_names) != known:
            return None
        done = self._replays.run(key, feeds)  # type: ignore[union-attr]
        if done is None:
            return None
        self.device.count_copies(len(feeds))  # type: ignore[attr-defined]  # (as ``accept``)
        to_host = self.device.to_host
        return {name: to_host(done[name]) for name in self._output_names}

    def _execute(self, feeds: dict[str, Any], wanted: Sequence[str], host: bool = True,
                 usual: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The wanted outputs: by replay when one fits, else segment by segment (recorded for
        replays when every segment ran bound). ``usual``: the caller's feeds when every output
        goes to the host (the call ``_run_hot`` serves)."""
        replays = self._replays if self._observer is None else None
        key = replays.key(feeds, wanted, host) if replays is not None else None
        if replays is None or key is None:
            return self._run_segments(feeds, wanted, host)
        done = replays.run(key, feeds)
        if done is None:
            replays.device.begin_trace()
            try:
                done = self._run_segments(feeds, wanted, host)
            finally:
                trace = replays.device.end_trace()
            if not replays.record(key, feeds, done, trace):
                return done
        known = _host_signature(usual, self._input_names) if usual is not None else None
        if known is not None:
            self._hot = (key, known)
        return done

    def _run_segments(self, feeds: dict[str, Any], wanted: Sequence[str], host: bool) -> dict[str, Any]:
        env = dict(feeds)
        keep = frozenset(wanted)
        for position, segment in enumerate(self._segments):
            spec = segment.spec
            inputs = {n: env[n] if n in env else self._constant(n) for n in spec.inputs}
            if (isinstance(segment, _Segment) and spec.engine is not None and spec.engine.profiles
                    and not self.settings.allow_rebuild):
                self._require_segment_fit(spec, inputs)
            observer = self._observer
            try:
                to_host = self._caller_only[position] & keep if host else frozenset()
                if observer is not None:
                    observer.before(position, spec)
                outputs = segment.run(self.device, inputs, to_host)
                if observer is not None:
                    observer.after(position, spec, inputs, outputs)
            except HybridTRTError:
                raise
            except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
                raise _failed(spec, exc) from exc
            env.update(zip(spec.outputs, outputs))
            for name in spec.inputs:
                if self.plan.last_use.get(name) == position and name not in keep:
                    env.pop(name, None)
        return {n: env[n] if n in env else self._constant(n) for n in wanted}

    def _require_segment_fit(self, spec: SegmentSpec, inputs: Mapping[str, Any]) -> None:
        """An isolated fallback engine's inputs must fit its profiles, as in TensorRT."""
        shapes = {n: self.device.shape_of(v) for n, v in inputs.items()}
        key = (spec.name, tuple(shapes.values()))
        if key in self._fitting_segments:
            return
        _require_fit(spec.name, shapes, spec.engine.profiles if spec.engine else [])
        if len(self._fitting_segments) < 256:
            self._fitting_segments.add(key)

    def _constant(self, name: str) -> Any:
        tensor = self._constants.get(name)
        if tensor is None:
            raise InputError(f"no value for tensor '{name}'")
        return self.device.accept(name, onnx.numpy_helper.to_array(tensor))

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
        """Where each engine runs (``tensorrt`` or ``onnxruntime``) and why."""
        return list(self.plan.placements)

    def segments(self) -> list[SegmentSpec]:
        """The plan's segments in run order."""
        return list(self.plan.segments)

    def set_segment_observer(self, observer: SegmentObserver | None) -> None:
        """Call ``observer.before``/``after`` around every segment run (None: stop)."""
        self._observer = observer

    def end_profiling(self) -> dict[str, str]:
        """Stop ONNX Runtime's profiler (``Config.enable_profile``) in every ORT segment.

        Returns:
            ``{segment name: path of its ORT profile JSON}``.
        """
        if self.settings.ort_profile_prefix is None:
            raise ConfigError("profiling is off: call config.enable_profile() before "
                              "create_predictor()")
        return {s.spec.name: s.session.end_profiling() for s in self._segments
                if isinstance(s, _Segment)}


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
            array = array.reshape(self._shape)
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


def _check_value(spec: NodeArg, value: Any, shape: tuple[int, ...]) -> None:
    dtype = dtype_of(value)
    if spec.dtype is not None and dtype is not None and dtype != spec.dtype:
        raise InputError(f"input '{spec.name}' has dtype {dtype}; the model expects {spec.dtype}")
    if spec.shape and len(shape) != len(spec.shape):
        raise InputError(f"input '{spec.name}' has rank {len(shape)} (shape {list(shape)}); the "
                         f"model expects rank {len(spec.shape)} {spec.shape}")
    for axis, (got, want) in enumerate(zip(shape, spec.shape)):
        if isinstance(want, int) and want > 0 and got != want:
            raise InputError(f"input '{spec.name}' dimension {axis} is {got}; the model fixes it "
                             f"to {want}")


_Signature = tuple[tuple[Any, Any], ...]  # (dtype, shape) per model input, in their order


def _host_signature(feeds: Mapping[str, Any], names: Sequence[str]) -> _Signature | None:
    """``(dtype, shape)`` per input in ``names`` order (as ``_check_feeds`` keeps those that
    passed) when ``feeds`` holds exactly these inputs as C-order numpy arrays; else None."""
    if len(feeds) != len(names):
        return None
    found = []
    for name in names:
        array = feeds.get(name)
        if type(array) is not np.ndarray or not array.flags.c_contiguous:
            return None
        found.append((array.dtype, array.shape))
    return tuple(found)


def _failed(spec: SegmentSpec, exc: Exception) -> ExecutionError:
    """The error for a segment whose run raised ``exc`` (ORT's own, untyped)."""
    return ExecutionError(f"segment {spec.name} failed: {first_line(exc)}")


def _require_fit(engine: str, shapes: Mapping[str, tuple[int, ...]],
                 profiles: Sequence[Mapping[str, Mapping[str, list[int]]]]) -> None:
    """Raise InputError naming the engine and its ranges unless one profile holds ``shapes``."""
    if select_profile(shapes, profiles) is None:
        raise InputError(outside_profiles(engine, shapes, profiles))
