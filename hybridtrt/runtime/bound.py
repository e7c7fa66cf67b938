"""Bound runs: a segment's outputs in buffers bound once per input signature.

A segment run that binds its inputs and outputs afresh costs ONNX Runtime on CUDA about 50 us
more than one whose binding is already set: the binding calls, ORT allocating each output, and
new Python objects for them. So after a session's first run with a given signature (input names,
shapes and dtypes), its outputs get buffers of their own, bound once. Later runs with that
signature rebind only the inputs whose value changed and write into the same buffers, which the
next segments read through bindings that stay the same too. This is what TensorRT runtimes do
with their I/O buffers.

The buffers are reused by the next run: ``owns`` tells a caller that wants to keep a value
past the run to copy it. A session whose bound run fails while a fresh run succeeds (an output
whose shape depends on the input values) is never bound again; its runs go back to fresh
bindings. When the failed run was a CUDA graph's (``graphs``), only the graphs go: the session
keeps its bound buffers and runs without capture. ``generation`` grows whenever a binding changes, so replays of recorded runs
(``replay``) know when theirs went stale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["BOUND_SIGNATURES", "BoundRuns", "signature"]

BOUND_SIGNATURES = 4  # signatures bound per session; runs with others bind afresh

Signature = tuple[tuple[str, tuple[int, ...], str], ...]


@dataclasses.dataclass
class _Bound:
    binding: Any
    outputs: list[Any]
    graph_id: int = 0  # this signature's CUDA graph, for sessions that capture graphs
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)  # bound to now
    captured: dict[str, Any] | None = None  # the inputs its CUDA graph was captured with
    options: Any = None  # the run options of its last run


def signature(inputs: Mapping[str, Any]) -> Signature | None:
    """Input names, shapes and dtypes; None when an input is not a tensor."""
    parts = []
    for name, value in inputs.items():
        if isinstance(value, np.ndarray):
            parts.append((name, value.shape, value.dtype.str))
        elif callable(getattr(value, "data_type", None)):  # an OrtValue
            if not value.is_tensor():
                return None
            parts.append((name, tuple(value.shape()), value.data_type()))
        elif hasattr(value, "__cuda_array_interface__"):
            interface = value.__cuda_array_interface__
            parts.append((name, tuple(interface["shape"]), str(interface["typestr"])))
        else:
            return None
    return tuple(parts)


class BoundRuns:
    """Bindings whose outputs are fixed buffers, per session and input signature.

    Args:
        device_type: Where the output buffers live (``"cuda"``, or ``"cpu"`` in tests).
        device_id: The device's index.
        limit: Signatures bound per session.
    """

    def __init__(self, device_type: str, device_id: int = 0, limit: int = BOUND_SIGNATURES,
                 graph_options: Sequence[Any] = ()) -> None:
        self.device_type = device_type
        self.device_id = device_id
        self.limit = limit
        self.graph_options = list(graph_options)  # run options: [no capture, graph 0, graph 1...]
        self.generation = 0  # grows whenever a binding changes (replays check it)
        self._bound: dict[tuple[int, Signature], _Bound] = {}
        self._count: dict[int, int] = {}  # signatures bound per session
        self._refused: set[int] = set()  # sessions never bound again
        self._graphless: set[int] = set()  # graph sessions whose capture failed: no graphs
        self._single: set[int] = set()  # graph sessions allowed one graph (``limit_graphs``)
        self._graphing: dict[int, int] = {}  # such a session: the graph it runs
        self._failing: dict[int, bool] = {}  # sessions whose last bound run failed: with a graph?
        self.graph_runs = 0  # bound runs given a CUDA graph (ORT captures, then replays)
        self._owned: dict[int, tuple[tuple[int, ...], str]] = {}  # buffer id: (shape, type)

    def signature(self, inputs: Mapping[str, Any]) -> Signature | None:
        """``signature(inputs)``, with the bound buffers' shapes remembered rather than asked."""
        owned = self._owned
        if not all(id(v) in owned for v in inputs.values()):
            return signature(inputs)
        return tuple((name, *owned[id(v)]) for name, v in inputs.items())

    def run(self, session: Any, key: Signature | None, inputs: Mapping[str, Any],
            bind: Callable[[Any, str, Any], None], graph: bool = False,
            fixed: Callable[[Any], bool] = lambda value: False,
            options: Any = None) -> _Bound | None:
        """The binding of a bound run (its ``outputs`` hold the results), or None when this
        signature is not bound or the run failed (then a fresh run answers; see ``learn``).

        ``bind(binding, name, value)`` binds one input. Host arrays (which ORT copies as it
        binds them) and a caller's device arrays (whose memory may have moved) are rebound every
        run; ORT values only when they are not the ones bound. ``graph``: the session captures
        CUDA graphs (see ``graphs``); a run replays this signature's graph only when every input
        is ``fixed`` (a buffer that stays where it is) and is the one the graph was captured
        with; other runs of the session are made without capture. ``options``: the run options
        of a session that captures no graphs.
        """
        bound = self._bound.get((id(session), key)) if key is not None else None
        if bound is None:
            return None
        for name, value in inputs.items():
            if bound.inputs.get(name) is not value or not callable(getattr(value, "data_type", None)):
                bind(bound.binding, name, value)
                bound.inputs[name] = value
                self.generation += 1
        graphed = graph and id(session) not in self._graphless and self._graphed(bound, fixed)
        if graph and id(session) in self._single:
            graphed = self._one_graph(session, bound.graph_id if graphed else None)
        bound.options = (self.graph_options[bound.graph_id + 1 if graphed else 0] if graph
                         else options)
        try:
            session.run_with_iobinding(bound.binding, bound.options)
        except Exception:  # noqa: BLE001 - ORT raises its own untyped errors; a fresh run reports it
            self._failing[id(session)] = graphed
            return None
        self._failing.pop(id(session), None)
        self.graph_runs += graphed
        return bound

    def limit_graphs(self, session: Any) -> None:
        """Let a graph session hold one graph only (``graphs.single_graph``)."""
        self._single.add(id(session))

    def no_capture(self, session: Any) -> None:
        """Tell of a graph session's run made without capture (a fresh one)."""
        if id(session) in self._single:
            self._one_graph(session, None)

    def _one_graph(self, session: Any, graph_id: int | None) -> bool:
        """For a session allowed one graph: whether this run may go with graph ``graph_id``
        (None: a run without capture). Once the session has run a graph, any other run ends its
        graphs for good: ORT staged arguments of that graph in pinned host memory, which other
        runs of the session reuse."""
        ran = self._graphing.get(id(session))
        if graph_id is not None and ran in (None, graph_id):
            self._graphing[id(session)] = graph_id
            return True
        if ran is not None and id(session) not in self._graphless:
            self._graphless.add(id(session))
            self.generation += 1  # replays recorded with its graph are stale
        return False

    @staticmethod
    def _graphed(bound: _Bound, fixed: Callable[[Any], bool]) -> bool:
        """Whether a graph session's bound run goes with its signature's graph: only when every
        input is the fixed buffer the graph was (or is now) captured with."""
        if bound.captured is None and all(fixed(v) for v in bound.inputs.values()):
            bound.captured = dict(bound.inputs)  # ORT captures on one of the next runs
        return bound.captured is not None and len(bound.captured) == len(bound.inputs) and all(
            bound.inputs.get(n) is v for n, v in bound.captured.items())

    def learn(self, session: Any, key: Signature | None, outputs: Sequence[str],
              values: Sequence[Any], on_host: Collection[str] = ()) -> None:
        """Bind buffers shaped like ``values`` (a fresh run's outputs) for later runs of ``key``;
        those of the outputs ``on_host`` in host memory.

        After a failed bound run, a fresh run that succeeds shows the binding was at fault: when
        the failed run went with a CUDA graph, the capture (the session keeps its bindings but
        captures no more); otherwise an output shape that depends on the input values (the
        session is never bound again). When the fresh run fails too, the inputs were at fault
        and the binding stays.
        """
        if id(session) in self._failing:
            if self._failing.pop(id(session)):
                self._graphless.add(id(session))
                self.generation += 1  # replays recorded with its graph are stale
            else:
                self.refuse(session)
            return
        if key is None or id(session) in self._refused or (id(session), key) in self._bound:
            return
        if self._count.get(id(session), 0) >= self.limit or set(outputs) & {k[0] for k in key}:
            return  # (an output that is also an input is never written to a bound buffer)
        if not all(callable(getattr(v, "is_tensor", None)) and v.is_tensor()
                   and v.data_type() != "tensor(string)" for v in values):
            return  # sequences, optionals, strings or host arrays: not bindable
        try:
            bound = self._bind_outputs(session, outputs, values, on_host)
        except Exception:  # noqa: BLE001 - ORT raises its own untyped errors (a type it cannot allocate)
            self.refuse(session)
            return
        bound.graph_id = self._count.get(id(session), 0)
        self._bound[(id(session), key)] = bound
        self._count[id(session)] = bound.graph_id + 1
        self._owned.update((id(b), (tuple(b.shape()), b.data_type())) for b in bound.outputs)

    def _bind_outputs(self, session: Any, outputs: Sequence[str], values: Sequence[Any],
                      on_host: Collection[str]) -> _Bound:
        import onnxruntime as ort

        buffers = [ort.OrtValue.ortvalue_from_shape_and_type(
            list(v.shape()), v.element_type(),
            *(("cpu", 0) if name in on_host else (self.device_type, self.device_id)))
            for name, v in zip(outputs, values)]
        binding = session.io_binding()
        for name, buffer in zip(outputs, buffers):
            binding.bind_ortvalue_output(name, buffer)
        return _Bound(binding, buffers)

    def refuse(self, session: Any) -> None:
        """Drop the session's bindings and never bind it again."""
        self._refused.add(id(session))
        self.generation += 1
        for key in [k for k in self._bound if k[0] == id(session)]:
            bound = self._bound.pop(key)
            for buffer in bound.outputs:
                self._owned.pop(id(buffer), None)

    def owns(self, value: Any) -> bool:
        """Whether ``value`` is one of the buffers the next run overwrites."""
        return id(value) in self._owned
