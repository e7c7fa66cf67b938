"""Where the accuracy guard runs a lowered engine: ONNX Runtime's emulation, or the engine itself.

``OrtRuns`` runs the lowered subgraph in ONNX Runtime on the CPU, its 16-bit values emulated by
rounding (``core.fp32``). ``EngineRuns`` builds it with the conversion's own builder, profiles and
settings (the strongly typed graph the real build takes) and runs the plan through the runtime's
``EngineSegment``, so the error measured is the engine's own: its kernels, fusions and
accumulation. ``engine_runs`` says whether the builder's TensorRT can execute engines here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from hybridtrt.compiler.precision import logits
from hybridtrt.core.fp32 import as_fp32
from hybridtrt.core.graph import GraphIndex, in_topological_order
from hybridtrt.errors import HybridTRTError
from hybridtrt.ort_support import first_line, runnable_bytes
from hybridtrt.trt.api import TensorRTFailure
from hybridtrt.trt.builder import TensorRTBuilder, deserialize_plan
from hybridtrt.trt import rtx
from hybridtrt.trt.engine import EngineBuilder
from hybridtrt.trt.library import RTX

__all__ = ["BY_ONNXRUNTIME", "BY_TENSORRT", "EngineRuns", "OrtRuns", "Unrunnable", "engine_runs",
           "ort_outputs", "topologically_sorted"]

_LOG = logging.getLogger("hybridtrt")
BY_ONNXRUNTIME = "onnxruntime"
BY_TENSORRT = "tensorrt"
_TAP_SUFFIX = "__accuracy_guard_fp32"  # the FP32 copy of a logits tensor an engine outputs
Feeds = Sequence[Mapping[str, np.ndarray]]
Outputs = list[list[np.ndarray]]


class Unrunnable(Exception):
    """The lowered engine cannot be run this way (the message says why)."""


def topologically_sorted(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its main graph's nodes in a stable topological order."""
    if in_topological_order(model.graph):
        return model
    order = GraphIndex(model).topo_order
    if order == list(range(len(model.graph.node))):
        return model
    nodes = [model.graph.node[k] for k in order]
    sorted_model = onnx.ModelProto()
    sorted_model.CopyFrom(model)
    del sorted_model.graph.node[:]
    sorted_model.graph.node.extend(nodes)
    return sorted_model


def ort_outputs(model: onnx.ModelProto, feeds: Feeds, extra: Sequence[str] = ()) -> Outputs:
    """``model``'s outputs, then the FP32 tensors ``extra``, for every feed, in ONNX Runtime."""
    import onnxruntime as ort

    if extra:
        model = _with_outputs(model, extra)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(runnable_bytes(model), options,
                                       providers=["CPUExecutionProvider"])
        wanted = [i.name for i in session.get_inputs()]
        return [[np.asarray(v) for v in session.run(None, {n: f[n] for n in wanted})]
                for f in feeds]
    except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
        raise Unrunnable(f"ONNX Runtime cannot run it on the CPU ({first_line(exc)})") from exc


def _with_outputs(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    extended = onnx.ModelProto()
    extended.CopyFrom(model)
    extended.graph.output.extend(onnx.helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                                 for n in names)
    return extended


def _logits_of(model: onnx.ModelProto, probes: Sequence[str]) -> list[str]:
    """The logits tensor of each output in ``probes``, as ``model`` names it."""
    found = logits.taps(model)
    lost = [k for k in probes if k not in found]
    if lost:  # the search's lowerings read like the first one; never seen to happen
        raise Unrunnable(f"the logits of output '{lost[0]}' are not found in a lowering")
    return [found[k].tensor for k in probes]


@dataclasses.dataclass(frozen=True)
class OrtRuns:
    """The lowered engine emulated in ONNX Runtime on the CPU (``types``: its 16-bit types)."""

    types: frozenset[int]
    by: str = BY_ONNXRUNTIME

    def outputs(self, model: onnx.ModelProto, probes: Sequence[str], feeds: Feeds) -> Outputs:
        """The outputs of ``model``, then the logits of the outputs ``probes``, for every feed."""
        emulated = onnx.helper.make_model(as_fp32(model.graph, set(self.types)),
                                          opset_imports=list(model.opset_import))
        emulated.ir_version = model.ir_version
        return ort_outputs(emulated, feeds, _logits_of(emulated, probes))


@dataclasses.dataclass(frozen=True)
class EngineRuns:
    """The lowered engine built as the conversion builds it and run as the runtime runs it.

    Attributes:
        builder: The conversion's builder (plans go through its engine cache, so the build of
            the lowering the guard settles on is a cache hit).
        device: The runtime device the engine's memory lives on (host for a backend whose
            engines run on the host, as the tests' fake does).
        name: The engine's name, in messages.
        profiles: The engine's optimization profiles.
        settings: The build settings.
    """

    builder: TensorRTBuilder
    device: Any
    name: str = ""
    profiles: tuple[Mapping[str, Any], ...] = ()
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    by: str = BY_TENSORRT

    def for_engine(self, name: str, profiles: Sequence[Mapping[str, Any]],
                   settings: Mapping[str, Any]) -> EngineRuns:
        """These runs for one engine."""
        return dataclasses.replace(self, name=name, profiles=tuple(profiles), settings=settings)

    def outputs(self, model: onnx.ModelProto, probes: Sequence[str], feeds: Feeds) -> Outputs:
        """The outputs of ``model``, then the logits of the outputs ``probes`` (cast to FP32 in
        the engine: an extra output), for every feed, from the engine built of it."""
        from hybridtrt.runtime.trt_segment import EngineSegment  # only where engines run

        built = topologically_sorted(_with_fp32_copies(model, _logits_of(model, probes)))
        label = f"{self.name} (accuracy guard)"
        result = self.builder.build(label, built, self.profiles, self.settings)
        if result.error or not result.plan:
            raise Unrunnable(f"TensorRT cannot build it: {result.error or result.reason}")
        names = [o.name for o in built.graph.output]
        try:
            engine = deserialize_plan(self.builder.backend, result.plan, built,
                                      bool(result.fingerprint.get("stripped")))
            segment = EngineSegment(label, engine, self.profiles, self.device)
            return [[np.asarray(self.device.to_host(v)) for v in segment.run(feed, names)]
                    for feed in feeds]
        except (TensorRTFailure, HybridTRTError) as exc:
            raise Unrunnable(f"TensorRT cannot run it: {exc}") from exc


def _with_fp32_copies(model: onnx.ModelProto, tensors: Sequence[str]) -> onnx.ModelProto:
    """``model`` with an FP32 copy of each of ``tensors`` as an extra output (a logits tensor
    may be 16-bit inside the engine, and BF16 cannot be handed to numpy)."""
    if not tensors:
        return model
    extended = onnx.ModelProto()
    extended.CopyFrom(model)
    for tensor in tensors:
        copy = tensor + _TAP_SUFFIX
        extended.graph.node.append(onnx.helper.make_node(
            "Cast", [tensor], [copy], name=copy, to=TensorProto.FLOAT))
        extended.graph.output.append(onnx.helper.make_tensor_value_info(copy, TensorProto.FLOAT,
                                                                        None))
    return extended


def engine_runs(builder: EngineBuilder, device_id: int) -> tuple[EngineRuns | None, str]:
    """Runs through the engine when ``builder``'s TensorRT can execute engines here, else None
    and why the guard measures through ONNX Runtime."""
    if not isinstance(builder, TensorRTBuilder):
        return None, "no TensorRT builds the engines"
    backend = builder.backend
    on_host = not backend.unusable_reason("cpu", device_id)  # engines that run on the host
    why = "" if on_host else backend.unusable_reason("cuda", device_id)
    if why:
        return None, why
    targets = builder.target.compute_capabilities  # TensorRT-RTX: what its plans run on
    if backend.library == RTX and targets:
        gpu = backend.gpu(device_id)
        if not rtx.runs_on(gpu.compute_capability, targets):
            return None, (f"the plans TensorRT-RTX builds here target {', '.join(targets)}, "
                          f"not CUDA device {device_id} ({gpu.compute_capability})")
    from hybridtrt.runtime.devices import open_device  # only where engines run

    try:
        device = open_device(not on_host, device_id)
    except HybridTRTError as exc:
        return None, str(exc)
    return EngineRuns(builder, device), ""
