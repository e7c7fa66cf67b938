"""The ``Device`` protocol: where values live between segments and how ORT sessions run on them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from hybridtrt.runtime.devices.counters import RunStats
from hybridtrt.runtime.trt_segment import EngineMemory

__all__ = ["Device"]


class Device(EngineMemory, Protocol):
    """Runs ORT sessions on values of one kind, moves values to and from the host, and holds
    the memory of TensorRT engines (``EngineMemory``)."""

    name: str
    graphs: bool  # some sessions capture CUDA graphs
    may_skip_sync: bool  # runs may skip ORT's stream sync (``graphs.unsynced_safe``)

    def providers(self, graph: bool = False) -> list[Any]: ...

    def limit_graphs(self, session: Any) -> None:
        """Let a graph session hold one CUDA graph only (``graphs.single_graph``)."""
        ...

    def graphs_ended(self, session: Any) -> str:
        """Why a graph session's CUDA graphs ended at run time ("" while they go on)."""
        ...

    def accept(self, name: str, value: Any) -> Any:
        """A caller's input as a value this device runs on (no copy when already there; a host
        array on the GPU is copied as it is bound, or staged when several segments read it)."""
        ...

    def run(self, session: Any, inputs: Mapping[str, Any], outputs: Sequence[str],
            host_outputs: Collection[str] = (), graph: bool = False, sync: bool = True,
            host_values: Collection[str] = ()) -> list[Any]:
        """Run a session; ``host_outputs`` are only read by the caller and may land on the host.

        ``graph``: the session was created to capture CUDA graphs (``providers(graph=True)``).
        ``sync=False``: the run may end without waiting for its work (``graphs.unsynced_safe``);
        a later run on the stream, or reading a value on the host, waits for it.
        ``host_values``: outputs that ORT writes in host memory and later segments read from
        there (``placement.kept_on_host``).
        """
        ...

    def to_host(self, value: Any) -> np.ndarray: ...

    def synchronize(self) -> None:
        """Wait for the work queued on the device's stream (nothing on the host)."""
        ...

    def count_copies(self, count: int) -> None:
        """Count host<->device copies made without ``accept`` or ``to_host``."""
        ...

    def stats(self) -> RunStats:
        """The device's counts so far (``replays`` left 0: the predictor's executor has them)."""
        ...
