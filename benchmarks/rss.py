"""Peak resident memory of this process: what the large-model benchmark prints per stage and
what the large-model memory tests assert on (both run it in a fresh process, where RSS counts
only what that process did)."""

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


def _high_water() -> int:
    """The kernel's peak RSS of this process (VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("/proc/self/status has no VmHWM")


def _reset_high_water() -> bool:
    """Reset VmHWM to the RSS now (Linux 4.0+); whether that worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakRSS:
    """The highest RSS since the last ``restart``.

    The kernel's high-water mark when it can be reset: it sees every peak, where a sampling
    thread misses those inside one C call (a protobuf copy holds the GIL). Otherwise a thread
    samples RSS every ``every`` seconds.

    Args:
        every: Seconds between samples, when sampling.
    """

    def __init__(self, every: float = 0.005) -> None:
        self.exact = _reset_high_water()
        self._lock = threading.Lock()  # a restart is never undone by a sample taken before it
        self._peak = rss()
        if not self.exact:
            threading.Thread(target=self._sample, args=(every,), daemon=True).start()

    def _sample(self, every: float) -> None:
        while True:
            with self._lock:
                self._peak = max(self._peak, rss())
            time.sleep(every)

    def restart(self) -> int:
        """Start a new measurement from the RSS now (returned)."""
        with self._lock:
            if self.exact:
                _reset_high_water()
            self._peak = now = rss()
        return now

    def peak(self) -> int:
        """The highest RSS since ``restart`` (or since this sampler was made)."""
        if self.exact:
            return max(_high_water(), rss())
        return max(self._peak, rss())
