"""Executors: the ways a predictor runs its segments once the input checks passed, all behind
``Executor`` and picked when the predictor is made:

- ``Loop``: the evaluator loop over a ``{name: value}`` environment; always right, the fallback
  of every other path, and the path of observed runs (``set_segment_observer``).
- ``SingleSession``: one ORT segment reading every input and giving every output; host arrays
  of a signature that passed the checks before go straight to the session.
- ``Replaying`` (GPU, several segments or CUDA graphs): runs whose every segment ran bound are
  replayed as a bare list of bound runs (``replay``); the usual call (every output, feeds of
  the last such run's signature: host arrays, or with CUDA graphs device arrays) at once,
  without checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from hybridtrt.errors import ExecutionError, HybridTRTError
from hybridtrt.ort_support import first_line
from hybridtrt.runtime.checks import InputChecks, device_signature, host_signature
from hybridtrt.runtime.devices import CudaDevice, Device, RunStats
from hybridtrt.runtime.plan import SegmentSpec
from hybridtrt.runtime.replay import Key, Replays
from hybridtrt.runtime.segments import OrtSegment, Segment
from hybridtrt.runtime.signatures import Signature

__all__ = ["Executor", "Loop", "Replaying", "RunStats", "SegmentObserver", "SingleSession",
           "failed", "run_stats"]


def run_stats(device: Device, replays: Replays | None) -> RunStats:
    """The counts of ``device`` and ``replays`` now."""
    return dataclasses.replace(device.stats(), replays=replays.runs if replays is not None else 0)


class SegmentObserver(Protocol):
    """Watches each segment run (the bench, profile and compare tools implement it)."""

    def before(self, position: int, spec: SegmentSpec) -> None:
        """Called just before segment ``position`` runs."""

    def after(self, position: int, spec: SegmentSpec, inputs: Mapping[str, Any],
              outputs: Sequence[Any]) -> None:
        """Called just after it ran, with its inputs and outputs as the device holds them."""


class Executor(Protocol):
    """Runs a predictor's segments on feeds that passed the input checks."""

    def run(self, feeds: dict[str, Any], wanted: Sequence[str], host: bool,
            usual: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The ``wanted`` outputs as the device holds them. ``host``: the outputs go to the
        host; ``usual``: the caller's own feeds, when every output is wanted."""
        ...

    def run_usual(self, feeds: Mapping[str, Any], host: bool = True) -> dict[str, Any] | None:
        """Every output, as ``run`` gives them, for the caller's ``feeds`` when this executor
        knows they passed the checks before; None: check them and ``run``."""
        ...


class Loop:
    """The evaluator loop: each segment in order over a ``{name: value}`` environment.

    Args:
        segments: The segments in run order.
        last_use: ``{value: position of the last segment reading it}`` (freed after it).
        constant: The value of a model initializer a segment reads.
        checks: The predictor's input checks (isolated fallback engines' profiles).
        observer: Called around every segment run (None: none).
    """

    def __init__(self, segments: Sequence[Segment], last_use: Mapping[str, int],
                 constant: Callable[[str], Any], checks: InputChecks,
                 observer: SegmentObserver | None = None) -> None:
        self.segments = list(segments)
        self._last_use = last_use
        self._constant = constant
        self._checks = checks
        self.observer = observer
        read_later: set[str] = set()
        self._caller_only: list[frozenset[str]] = []
        for segment in reversed(self.segments):  # outputs no later segment reads
            spec = segment.spec
            self._caller_only.append(frozenset(o for o in spec.outputs if o not in read_later))
            read_later.update(spec.inputs)
        self._caller_only.reverse()

    def run(self, feeds: dict[str, Any], wanted: Sequence[str], host: bool,
            usual: Mapping[str, Any] | None = None) -> dict[str, Any]:
        env = dict(feeds)
        keep = frozenset(wanted)
        observer = self.observer
        for position, segment in enumerate(self.segments):
            spec = segment.spec
            inputs = {n: env[n] if n in env else self._constant(n) for n in spec.inputs}
            if isinstance(segment, OrtSegment):
                self._checks.segment_fits(spec, inputs)
            try:
                to_host = self._caller_only[position] & keep if host else frozenset()
                if observer is not None:
                    observer.before(position, spec)
                outputs = segment.run(inputs, to_host)
                if observer is not None:
                    observer.after(position, spec, inputs, outputs)
            except HybridTRTError:
                raise
            except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
                raise failed(spec, exc) from exc
            env.update(zip(spec.outputs, outputs))
            for name in spec.inputs:
                if self._last_use.get(name) == position and name not in keep:
                    env.pop(name, None)
        return {n: env[n] if n in env else self._constant(n) for n in wanted}

    def run_usual(self, feeds: Mapping[str, Any], host: bool = True) -> dict[str, Any] | None:
        return None


class SingleSession:
    """A model that is one ORT segment reading every input and giving every output.

    Host arrays of dtypes and shapes that passed the checks before go straight to the session:
    what the device's run does for host in, host out (a plain ORT run), without the steps
    around it. (Right after a GPU run the host's caches are cold, and each Python step costs
    several times more than in a tight loop.)
    """

    def __init__(self, loop: Loop, segment: OrtSegment, outputs: Sequence[str],
                 checks: InputChecks, device: Device) -> None:
        self._loop = loop
        self._segment = segment
        self._outputs = list(outputs)
        self._checks = checks
        self._device = device

    def run(self, feeds: dict[str, Any], wanted: Sequence[str], host: bool,
            usual: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._loop.run(feeds, wanted, host)

    def run_usual(self, feeds: Mapping[str, Any], host: bool = True) -> dict[str, Any] | None:
        if not host or not self._checks.known(feeds):
            return None
        try:
            values = self._segment.session.run(self._outputs, feeds)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
            raise failed(self._segment.spec, exc) from exc
        self._device.count_copies(len(feeds) + len(values))
        return dict(zip(self._outputs, values))


class Replaying:
    """Replays runs whose every segment ran bound (``replay``); records them from the loop."""

    def __init__(self, loop: Loop, replays: Replays, device: CudaDevice,
                 inputs: Sequence[str], outputs: Sequence[str]) -> None:
        self._loop = loop
        self.replays = replays
        self._device = device
        self._inputs = list(inputs)
        self._outputs = list(outputs)
        # per ``host``: the replay key of the last usual run and its feeds' signature
        # (``host_signature`` or ``device_signature``)
        self._hot: dict[bool, tuple[Key, Signature]] = {}

    def run(self, feeds: dict[str, Any], wanted: Sequence[str], host: bool,
            usual: Mapping[str, Any] | None = None) -> dict[str, Any]:
        replays = self.replays
        key = replays.key(feeds, wanted, host)
        if key is None:
            return self._loop.run(feeds, wanted, host)
        done = replays.run(key, feeds)
        if done is None:
            self._device.begin_trace()
            try:
                done = self._loop.run(feeds, wanted, host)
            finally:
                trace = self._device.end_trace()
            if not replays.record(key, feeds, done, trace):
                return done
        if usual is not None:
            known = _signature(usual, self._inputs, host)
            if known is not None:
                self._hot[host] = (key, known)
        return done

    def run_usual(self, feeds: Mapping[str, Any], host: bool = True) -> dict[str, Any] | None:
        """The last usual run's replay, on arrays of the same kind, dtypes and shapes (host
        arrays in C order, or device arrays): they passed every input check then. None: other
        arrays, or the replay is gone."""
        hot = self._hot.get(host)
        if hot is None or _signature(feeds, self._inputs, host) != hot[1]:
            return None
        device = self._device
        if host:
            done = self.replays.run(hot[0], feeds)
            if done is not None:
                device.count_copies(len(feeds))  # (as ``accept``)
            return done
        # (copied into their staging buffers, as ``accept`` does with CUDA graphs)
        return self.replays.run(hot[0], {n: device.accept(n, feeds[n]) for n in self._inputs})


def _signature(feeds: Mapping[str, Any], names: Sequence[str], host: bool) -> Signature | None:
    return host_signature(feeds, names) if host else device_signature(feeds, names)


def failed(spec: SegmentSpec, exc: Exception) -> ExecutionError:
    """The error for a segment whose run raised ``exc`` (ORT's own, untyped)."""
    return ExecutionError(f"segment {spec.name} failed: {first_line(exc)}")

