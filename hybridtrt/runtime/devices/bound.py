"""Bound runs: a segment's outputs in buffers bound once per input signature, reused by later
runs with that signature (the least recently used signatures of a session go).

``owns`` tells a caller that keeps a value past the run to copy it; ``generation`` grows
whenever a binding changes, so replays of recorded runs (``runtime.replay``) know when theirs
went stale. Why binding once pays: docs/PERFORMANCE.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from hybridtrt.runtime.devices.counters import Counters
from hybridtrt.runtime.devices.interop import is_ort_value
from hybridtrt.runtime.signatures import LRU, Signature, signature

__all__ = ["BOUND_SIGNATURES", "Bound", "BoundRuns", "GraphChoice"]

BOUND_SIGNATURES = 4  # signatures bound per session (the least recently used one goes)


@dataclasses.dataclass(eq=False)
class Bound:
    """One session's binding for one input signature, with its own output buffers (compared
    and hashed by identity: ``captures`` keeps its CUDA graph by it)."""

    binding: Any
    outputs: list[Any]
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)  # bound to now
    options: Any = None  # the run options of its last run


GraphChoice = Callable[[Any, Bound], tuple[Any, bool]]  # (session, bound): (options, graphed)


@dataclasses.dataclass
class _Session:
    bound: LRU[Signature, Bound]
    refused: bool = False  # never bound again
    failing: bool | None = None  # its last bound run failed: whether it went with a graph


class BoundRuns:
    """Bindings whose outputs are fixed buffers, per session and input signature.

    Args:
        device_type: Where the output buffers live (``"cuda"``, or ``"cpu"`` in tests).
        device_id: The device's index.
        limit: Signatures bound per session.
        counters: Where bound runs are counted.
    """

    def __init__(self, device_type: str, device_id: int = 0, limit: int = BOUND_SIGNATURES,
                 counters: Counters | None = None) -> None:
        self.device_type = device_type
        self.device_id = device_id
        self.limit = limit
        self.counters = counters if counters is not None else Counters()
        self.generation = 0  # grows whenever a binding changes (replays check it)
        self._sessions: dict[int, _Session] = {}
        self._owned: dict[int, tuple[tuple[int, ...], str]] = {}  # buffer id: (shape, type)

    def signature(self, inputs: Mapping[str, Any]) -> Signature | None:
        """``signature(inputs)``, with the bound buffers' shapes remembered rather than asked."""
        owned = self._owned
        if not all(id(v) in owned for v in inputs.values()):
            return signature(inputs)
        return tuple((name, *owned[id(v)]) for name, v in inputs.items())

    def run(self, session: Any, key: Signature | None, inputs: Mapping[str, Any],
            bind: Callable[[Any, str, Any], None], options: Any = None,
            graphs: GraphChoice | None = None) -> Bound | None:
        """The binding of a bound run (its ``outputs`` hold the results), or None when this
        signature is not bound or the run failed (then a fresh run answers; see ``learn``).

        ``bind(binding, name, value)`` binds one input. Host arrays (which ORT copies as it
        binds them) and a caller's device arrays (whose memory may have moved) are rebound every
        run; ORT values only when they are not the ones bound. ``options``: the run options;
        ``graphs``: for a session that captures CUDA graphs, picks them (``captures``).
        """
        state = self._sessions.get(id(session))
        bound = state.bound.get(key) if state is not None and key is not None else None
        if state is None or bound is None:
            return None
        for name, value in inputs.items():
            if bound.inputs.get(name) is not value or not is_ort_value(value):
                bind(bound.binding, name, value)
                bound.inputs[name] = value
                self.generation += 1
        graphed = False
        if graphs is not None:
            options, graphed = graphs(session, bound)
        bound.options = options
        try:
            session.run_with_iobinding(bound.binding, options)
        except Exception:  # noqa: BLE001 - ORT raises its own untyped errors; a fresh run reports it
            state.failing = graphed
            return None
        state.failing = None
        self.counters.bound_runs += 1
        self.counters.graph_runs += graphed
        return bound

    def learn(self, session: Any, key: Signature | None, outputs: Sequence[str],
              values: Sequence[Any], on_host: Collection[str] = ()) -> bool | None:
        """Bind buffers shaped like ``values`` (a fresh run's outputs) for later runs of ``key``;
        those of the outputs ``on_host`` in host memory.

        After a failed bound run, a fresh run that succeeds shows the binding was at fault:
        returns True when the failed run went with a CUDA graph (the caller ends the session's
        graphs; it keeps its bindings), else the session is never bound again (an output shape
        that depends on the input values). Otherwise returns None.
        """
        state = self._sessions.setdefault(id(session), _Session(LRU(self.limit)))
        if state.failing is not None:
            graphed, state.failing = state.failing, None
            if graphed:
                return True
            self.refuse(session)
            return None
        if key is None or state.refused or key in state.bound:
            return None
        if set(outputs) & {k[0] for k in key}:
            return None  # (an output that is also an input is never written to a bound buffer)
        if not all(callable(getattr(v, "is_tensor", None)) and v.is_tensor()
                   and v.data_type() != "tensor(string)" for v in values):
            return None  # sequences, optionals, strings or host arrays: not bindable
        try:
            bound = self._bind_outputs(session, outputs, values, on_host)
        except Exception:  # noqa: BLE001 - ORT raises its own untyped errors (a type it cannot allocate)
            self.refuse(session)
            return None
        self._owned.update((id(b), (tuple(b.shape()), b.data_type())) for b in bound.outputs)
        dropped = state.bound.put(key, bound)
        if dropped is not None:
            self._forget(dropped[1])
        return None

    def _bind_outputs(self, session: Any, outputs: Sequence[str], values: Sequence[Any],
                      on_host: Collection[str]) -> Bound:
        import onnxruntime as ort

        buffers = [ort.OrtValue.ortvalue_from_shape_and_type(
            list(v.shape()), v.element_type(),
            *(("cpu", 0) if name in on_host else (self.device_type, self.device_id)))
            for name, v in zip(outputs, values)]
        binding = session.io_binding()
        for name, buffer in zip(outputs, buffers):
            binding.bind_ortvalue_output(name, buffer)
        return Bound(binding, buffers)

    def _forget(self, bound: Bound) -> None:
        """A binding dropped: its buffers are no longer the predictor's (replays are stale)."""
        self.generation += 1
        for buffer in bound.outputs:
            self._owned.pop(id(buffer), None)

    def refuse(self, session: Any) -> None:
        """Drop the session's bindings and never bind it again."""
        state = self._sessions.setdefault(id(session), _Session(LRU(self.limit)))
        state.refused = True
        self.generation += 1
        for bound in state.bound.values():
            self._forget(bound)
        state.bound.clear()

    def owns(self, value: Any) -> bool:
        """Whether ``value`` is one of the buffers the next run overwrites."""
        return id(value) in self._owned
