"""What a predictor's runs did: ``RunStats``, the snapshot callers read, and the device's counts."""

from __future__ import annotations

import dataclasses

__all__ = ["Counters", "RunStats"]


@dataclasses.dataclass(frozen=True)
class RunStats:
    """What a predictor's runs did so far (a snapshot; all 0 on the CPU but ``replays``)."""

    replays: int = 0  # runs made by replaying a recorded run (``executors.Replaying``)
    bound_runs: int = 0  # segment runs into buffers bound on an earlier run
    graph_runs: int = 0  # bound runs given a CUDA graph (ORT captures it, then replays it)
    unsynced_runs: int = 0  # segment runs that skipped ORT's stream sync at their end
    host_copies: int = 0  # host<->device copies (inputs in, outputs out)
    foreign_outputs: int = 0  # segment outputs ORT left outside the GPU (should stay 0)
    ended_graphs: int = 0  # sessions whose CUDA graphs ended (a failed capture, ``single_graph``)
    device_copies: int = 0  # a caller's device inputs copied into staging buffers (CUDA graphs)


@dataclasses.dataclass(slots=True)
class Counters:
    """The counts a device keeps as it runs (``RunStats`` without the replays)."""

    bound_runs: int = 0
    graph_runs: int = 0
    unsynced_runs: int = 0
    host_copies: int = 0
    foreign_outputs: int = 0
    ended_graphs: int = 0
    device_copies: int = 0

    def stats(self) -> RunStats:
        return RunStats(0, self.bound_runs, self.graph_runs, self.unsynced_runs,
                        self.host_copies, self.foreign_outputs, self.ended_graphs,
                        self.device_copies)
