"""CUDA graphs over bound runs: which bound run of a graph session replays (or captures) its
signature's graph, and when a session's graphs end.

A run goes with a graph only when every input is a buffer of the predictor's own that stays
where it is (``fixed``) and is the one the graph was captured with; each signature of a session
gets its own graph id, at most ``limit`` per session. Which segments may capture, and why a
session may hold one graph only: ``runtime.graphs``.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from hybridtrt.runtime.devices.bound import Bound
from hybridtrt.runtime.devices.counters import Counters

__all__ = ["CAPTURE_FAILED", "Captures", "ONE_GRAPH_ENDED"]

CAPTURE_FAILED = "a CUDA graph capture failed at run time (it runs bound, without graphs)"
ONE_GRAPH_ENDED = ("it may hold one CUDA graph only (runtime.graphs.single_graph), and a run "
                   "without that graph came")


@dataclasses.dataclass
class _Graphs:
    given: int = 0  # graph ids given to its signatures
    single: bool = False  # allowed one graph only (``limit_graphs``)
    running: int | None = None  # such a session: the graph it runs
    ended: str = ""  # why its graphs ended ("" while they go on)


@dataclasses.dataclass
class _Graph:
    """The CUDA graph of one bound signature."""

    graph_id: int | None = None  # once one is given
    captured: dict[str, Any] | None = None  # the inputs it was (or is now) captured with


class Captures:
    """The CUDA graphs of graph sessions' bound runs.

    Args:
        options: ORT run options ``[no capture, graph 0, graph 1, ...]`` (``run_options``).
        fixed: Whether a value is a buffer of the predictor's that stays where it is.
        counters: Where sessions whose graphs ended are counted.
    """

    def __init__(self, options: Sequence[Any], fixed: Callable[[Any], bool],
                 counters: Counters) -> None:
        self._options = list(options)
        self.limit = len(self._options) - 1  # graphs per session
        self._fixed = fixed
        self._counters = counters
        self._sessions: dict[int, _Graphs] = {}
        self._graphs: weakref.WeakKeyDictionary[Bound, _Graph] = weakref.WeakKeyDictionary()
        self.generation = 0  # grows when a session's graphs end (replays with them are stale)

    def _state(self, session: Any) -> _Graphs:
        return self._sessions.setdefault(id(session), _Graphs())

    def choose(self, session: Any, bound: Bound) -> tuple[Any, bool]:
        """The run options of a graph session's bound run, and whether it goes with a graph."""
        state = self._state(session)
        graph = self._graphs.setdefault(bound, _Graph())
        graphed = not state.ended and self._captured(graph, bound.inputs)
        if graphed and graph.graph_id is None:
            if state.given < self.limit:
                graph.graph_id, state.given = state.given, state.given + 1
            else:
                graphed = False  # every graph id of the session is taken
        if state.single:
            graphed = self._one_graph(session, state, graph.graph_id if graphed else None)
        if graphed and graph.graph_id is not None:
            return self._options[graph.graph_id + 1], True
        return self._options[0], False

    def no_capture(self) -> Any:
        """The run options of a graph session's run without a graph."""
        return self._options[0]

    def limit_graphs(self, session: Any) -> None:
        """Let a graph session hold one graph only (``graphs.single_graph``)."""
        self._state(session).single = True

    def ran_fresh(self, session: Any) -> None:
        """Tell of a graph session's run made without capture (a fresh one)."""
        state = self._state(session)
        if state.single:
            self._one_graph(session, state, None)

    def end(self, session: Any, why: str) -> None:
        """End the session's graphs for good (it runs bound, without capture)."""
        state = self._state(session)
        if not state.ended:
            state.ended = why
            self.generation += 1
            self._counters.ended_graphs += 1

    def ended(self, session: Any) -> str:
        """Why the session's graphs ended ("" while they go on)."""
        found = self._sessions.get(id(session))
        return found.ended if found is not None else ""

    def _one_graph(self, session: Any, state: _Graphs, graph_id: int | None) -> bool:
        """For a session allowed one graph: whether this run may go with graph ``graph_id``
        (None: a run without capture). Once the session has run a graph, any other run ends its
        graphs for good: ORT staged arguments of that graph in pinned host memory, which other
        runs of the session reuse."""
        if graph_id is not None and state.running in (None, graph_id):
            state.running = graph_id
            return True
        if state.running is not None:
            self.end(session, ONE_GRAPH_ENDED)
        return False

    def _captured(self, graph: _Graph, inputs: dict[str, Any]) -> bool:
        """Whether a bound run goes with its signature's graph: only when every input is the
        fixed buffer the graph was (or is now) captured with."""
        if graph.captured is None and all(self._fixed(v) for v in inputs.values()):
            graph.captured = dict(inputs)  # ORT captures on one of the next runs
        return graph.captured is not None and len(graph.captured) == len(inputs) and all(
            inputs.get(n) is v for n, v in graph.captured.items())
