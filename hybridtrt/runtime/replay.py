"""Replays: a run whose every segment ran bound (``devices.bound``), kept as its list of
(session, binding, run options) and repeated as a bare loop for later runs with the same input
signature and wanted outputs. A replay is dropped when a binding changed since it was recorded
(the device's binding generation moved) or when it fails; the run is then made the ordinary
way, which reports any error. Why it pays: docs/PERFORMANCE.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from hybridtrt.runtime.devices.interop import is_ort_value
from hybridtrt.runtime.graphs import CAPTURE_LOCK
from hybridtrt.runtime.signatures import LRU, Signature, signature

__all__ = ["REPLAYS", "Replays", "TracingDevice"]

REPLAYS = 8  # replays kept per predictor (input signatures times wanted-output sets)

Key = tuple[Signature, tuple[str, ...], bool]


class TracingDevice(Protocol):
    """What replays need from a device (the CUDA device implements it)."""

    def begin_trace(self) -> None: ...

    def end_trace(self) -> list[tuple[Any, Any, Any]] | None: ...

    def staged(self, name: str, value: Any) -> Any: ...

    def owns(self, value: Any) -> bool: ...

    def binding_generation(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class _Replay:
    steps: tuple[tuple[Any, Any, Any], ...]  # (session, binding, run options or None)
    generation: int  # the device's binding generation when recorded
    inputs: tuple[tuple[str, Any], ...]  # model input, the device buffer the steps read
    outputs: tuple[tuple[str, Any], ...]  # wanted output, the buffer holding it


class Replays:
    """The replays of one predictor, by input signature and wanted outputs.

    Args:
        device: The predictor's device.
        segments: How many segments a run has (a replay must cover them all).
        graphs: Some sessions capture CUDA graphs (a replayed step may be the run in which ORT
            captures: replays hold the capture lock).
    """

    def __init__(self, device: TracingDevice, segments: int, graphs: bool = False) -> None:
        self.device = device
        self.segments = segments
        self.runs = 0  # runs made by replay
        self._lock: contextlib.AbstractContextManager[Any] = (
            CAPTURE_LOCK if graphs else contextlib.nullcontext())
        self._replays: LRU[Key, _Replay] = LRU(REPLAYS)

    def key(self, feeds: Mapping[str, Any], wanted: Sequence[str], host: bool) -> Key | None:
        """The replay key of a run; None when it cannot be replayed (inputs that are not host
        arrays or ORT values: a caller's device arrays are bound where they are)."""
        if not all(isinstance(v, np.ndarray) or is_ort_value(v)
                   for v in feeds.values()):
            return None
        found = signature(feeds)
        return (found, tuple(wanted), host) if found is not None else None

    def run(self, key: Key, feeds: Mapping[str, Any]) -> dict[str, Any] | None:
        """The wanted outputs by replay, or None (not recorded, or the replay failed)."""
        replay = self._replays.get(key)
        if replay is None:
            return None
        if replay.generation != self.device.binding_generation():
            self._replays.pop(key)  # a binding changed since (rebound, or its session refused)
            return None
        for name, buffer in replay.inputs:
            if self.device.staged(name, feeds[name]) is not buffer:
                self._replays.pop(key)  # the staging buffer moved: record again
                return None
        try:
            with self._lock:
                for session, binding, options in replay.steps:
                    session.run_with_iobinding(binding, options)
        except Exception:  # noqa: BLE001 - ORT raises its own untyped errors; the ordinary run reports it
            self._replays.pop(key)
            return None
        self.runs += 1
        return dict(replay.outputs)

    def record(self, key: Key, feeds: Mapping[str, Any], results: Mapping[str, Any],
               trace: Sequence[tuple[Any, Any, Any]] | None) -> bool:
        """Keep a run whose ``trace`` (``device.end_trace()``) shows every segment ran bound;
        whether it was kept."""
        if trace is None or len(trace) != self.segments:
            return False
        if not all(self.device.owns(v) for v in results.values()):
            return False  # an output that is a model input or constant: not in a bound buffer
        inputs = tuple((n, self.device.staged(n, v)) for n, v in feeds.items())
        self._replays.put(key, _Replay(tuple(trace), self.device.binding_generation(), inputs,
                                       tuple(results.items())))  # (the least recently used goes)
        return True
