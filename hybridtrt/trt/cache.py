"""The engine cache: plans keyed by content and build conditions, written atomically, shared
safely by several processes, plus one persistent timing cache per TensorRT version and GPU."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import filelock

from hybridtrt.core.files import write_atomically

__all__ = ["EngineCache", "cache_key", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$HYBRIDTRT_CACHE_DIR``, else ``$XDG_CACHE_HOME/hybridtrt``, else ``~/.cache/hybridtrt``."""
    explicit = os.environ.get("HYBRIDTRT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hybridtrt"


def cache_key(
    subgraph_sha256: str,
    profiles: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any],
    tensorrt_version: str,
    compute_capability: str,
) -> str:
    """SHA-256 over everything that changes a plan.

    ``subgraph_sha256`` covers the structure and every weight value (so one changed weight is
    a new key, which matters because stripped plans are built for identical-weight refits);
    ``settings`` are the build settings (precision, workspace, level, weight stripping...).
    """
    text = json.dumps(
        {"subgraph": subgraph_sha256, "profiles": list(profiles), "settings": dict(settings),
         "tensorrt": tensorrt_version, "compute_capability": compute_capability},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


class EngineCache:
    """Plans and timing caches under one directory.

    Args:
        directory: Where to keep them (``default_cache_dir()`` when None).

    Two processes converting the same model at once do not build the same engine twice: the
    second waits on the key's lock (``building``) and then finds the plan.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def _plan_path(self, key: str) -> Path:
        return self.directory / "engines" / f"{key}.plan"

    def get(self, key: str) -> bytes | None:
        """The cached plan for ``key``, or None."""
        try:
            return self._plan_path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, plan: bytes) -> Path:
        """Store a plan atomically; returns its path."""
        path = self._plan_path(key)
        write_atomically(path, plan)
        return path

    @contextmanager
    def building(self, key: str) -> Iterator[None]:
        """Hold the key's lock while checking the cache and building (one builder per key)."""
        lock_path = self.directory / "locks" / f"{key}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(lock_path)):
            yield

    def _timing_path(self, tensorrt_version: str, compute_capability: str) -> Path:
        safe = f"{tensorrt_version}-sm{compute_capability}".replace("/", "_")
        return self.directory / "timing" / f"{safe}.cache"

    def timing_cache(self, tensorrt_version: str, compute_capability: str) -> bytes:
        """The persistent timing cache for this TensorRT and GPU (b"" when there is none)."""
        try:
            return self._timing_path(tensorrt_version, compute_capability).read_bytes()
        except FileNotFoundError:
            return b""

    def save_timing_cache(self, tensorrt_version: str, compute_capability: str, data: bytes) -> None:
        """Replace the timing cache atomically (TensorRT's serialized cache already holds what
        it was started from, so the newest build's cache is a superset)."""
        if data:
            write_atomically(self._timing_path(tensorrt_version, compute_capability), data)
