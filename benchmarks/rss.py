"""Peak resident memory of this process, sampled by a thread: what the large-model benchmark
prints per stage and what the large-model memory tests assert on (both run it in a fresh
process, where RSS counts only what that process did)."""

from __future__ import annotations

import os
import threading
import time

__all__ = ["PeakRSS", "rss"]

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class PeakRSS:
    """The highest RSS seen since the last ``restart``, sampled every ``every`` seconds.

    Args:
        every: Seconds between samples (a peak shorter than that can be missed).
    """

    def __init__(self, every: float = 0.005) -> None:
        self._every = every
        self._lock = threading.Lock()  # a restart is never undone by a sample taken before it
        self._peak = rss()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            with self._lock:
                self._peak = max(self._peak, rss())
            time.sleep(self._every)

    def restart(self) -> int:
        """Start a new measurement from the RSS now (returned)."""
        with self._lock:
            self._peak = now = rss()
        return now

    def peak(self) -> int:
        """The highest RSS since ``restart`` (or since this sampler was made)."""
        return max(self._peak, rss())
