"""The ``Segment`` protocol and its two kinds: an ORT session and a TensorRT engine."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from hybridtrt.errors import ConfigError
from hybridtrt.ort_support import first_line, ort_session
from hybridtrt.runtime.devices import Device
from hybridtrt.runtime.graphs import (DISABLED_FUSIONS, GRAPHS_OFF, IN_TENSORRT, GraphStatus,
                                      graph_model, graph_refusal, single_graph)
from hybridtrt.runtime.plan import SegmentSpec
from hybridtrt.runtime.trt_segment import EngineSegment

__all__ = ["EngineStep", "GraphStatus", "OrtSegment", "Segment", "graph_status", "open_session"]


class Segment(Protocol):
    """One step of the evaluator loop: reads ``spec.inputs``, gives ``spec.outputs`` in order."""

    spec: SegmentSpec

    def run(self, inputs: Mapping[str, Any], to_host: frozenset[str]) -> list[Any]:
        """The outputs of one run; those in ``to_host`` are only read by the caller (they may
        land in host memory)."""
        ...


class OrtSegment:
    """One ORT session over a segment's model, run through the predictor's device.

    Args:
        spec: The segment.
        session: Its session (``open_session``).
        graph: The session captures CUDA graphs.
        device: The predictor's device.
        sync: False: its runs may skip ORT's stream sync (``graphs.unsynced_safe``).
        host_values: Outputs bound in host memory (``placement.kept_on_host``).
        graph_status: Why it is not captured, if not (``open_session``).
    """

    def __init__(self, spec: SegmentSpec, session: Any, graph: bool, device: Device,
                 sync: bool = True, host_values: frozenset[str] = frozenset(),
                 graph_status: GraphStatus | None = None) -> None:
        self.spec = spec
        self.session = session
        self.graph = graph
        self.graph_status = graph_status or GraphStatus(spec.name, graph, "" if graph else GRAPHS_OFF)
        self.device = device
        self.sync = sync
        self.host_values = host_values

    def run(self, inputs: Mapping[str, Any], to_host: frozenset[str]) -> list[Any]:
        return self.device.run(self.session, inputs, self.spec.outputs, to_host, self.graph,
                               self.sync, self.host_values)


class EngineStep:
    """A TensorRT engine segment in the evaluator loop."""

    def __init__(self, spec: SegmentSpec, engine: EngineSegment) -> None:
        self.spec = spec
        self.engine = engine

    def run(self, inputs: Mapping[str, Any], to_host: frozenset[str]) -> list[Any]:
        return self.engine.run(inputs, self.spec.outputs)


def graph_status(segment: Segment, device: Device) -> GraphStatus:
    """Whether ``segment``'s runs are captured as CUDA graphs now, and if not, why: with graphs
    off, what would prevent it (``graphs.graph_refusal``) where something would."""
    if not isinstance(segment, OrtSegment):
        return GraphStatus(segment.spec.name, False, IN_TENSORRT)
    status = segment.graph_status
    if status.captured:
        ended = device.graphs_ended(segment.session)
        return GraphStatus(status.segment, False, ended) if ended else status
    if status.reason == GRAPHS_OFF:
        refusal = graph_refusal(graph_model(segment.spec.model))
        if refusal is not None:
            return GraphStatus(status.segment, False, refusal)
    return status


def open_session(spec: SegmentSpec, device: Device, threads: int,
                 profile_prefix: str | None = None) -> tuple[Any, GraphStatus]:
    """An ORT session over ``spec``'s model, and whether it captures CUDA graphs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Fatal only: errors come back as exceptions, which the predictor reports; a bound run
    # that fails and is made again fresh (see ``bound``) should not print an error.
    options.log_severity_level = 4
    if threads:
        options.intra_op_num_threads = threads
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = f"{profile_prefix}{_file_part(spec.name)}"
    graphed = graph_model(spec.model) if device.graphs else None
    why = graph_refusal(graphed) if graphed is not None else GRAPHS_OFF
    if graphed is not None and why is None:
        try:  # ORT refuses when a node would run on the CPU: then no graph
            session = ort_session(graphed, options, device.providers(True),
                                  disabled_optimizers=DISABLED_FUSIONS)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
            why = f"ONNX Runtime refused to capture it: {first_line(exc)}"
        else:
            if single_graph(spec.model):
                device.limit_graphs(session)
            return session, GraphStatus(spec.name, True, "")
    try:
        return ort_session(spec.model, options, device.providers()), GraphStatus(
            spec.name, False, why or GRAPHS_OFF)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
        raise ConfigError(
            f"ONNX Runtime cannot load segment {spec.name}: {first_line(exc)}") from exc


def _file_part(name: str) -> str:
    """``name`` (from a model file) made safe as part of a file name: no folders, no dots first."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "_"
