"""``<model dir>/_opt_cache/``: built hybrid models and calibration tables, keyed like the engine
cache (model bytes + settings), written atomically, one builder at a time."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from hybridtrt.errors import ConfigError
from hybridtrt.online.settings import OnlineTensorRT

__all__ = ["OptCache"]

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()

# Settings that do not change what is built (only how the predictor gets there).
_NOT_KEYED = ("use_static", "collect_shape_path", "tuned_shape_path", "calibration_runs",
              "allow_build_at_runtime")


class OptCache:
    """The ``_opt_cache`` folder next to one model file, for one set of settings.

    Args:
        model_path: The plain ONNX model.
        online: The online settings (the build-changing ones go into the key).
        profile: The resolved profile inputs, as plain data (they change the build too).
    """

    def __init__(self, model_path: Path, online: OnlineTensorRT, profile: object) -> None:
        self.directory = model_path.parent / "_opt_cache"
        self.model_sha256 = hashlib.sha256(model_path.read_bytes()).hexdigest()
        settings = {k: v for k, v in dataclasses.asdict(online).items() if k not in _NOT_KEYED}
        settings["precision"] = online.precision.value
        text = json.dumps({"model": self.model_sha256, "settings": settings, "profile": profile},
                          sort_keys=True, separators=(",", ":"), default=str)
        self.key = hashlib.sha256(text.encode()).hexdigest()[:32]
        calib = json.dumps({"model": self.model_sha256, "profile": profile}, sort_keys=True,
                           default=str)
        self.calibration_key = hashlib.sha256(calib.encode()).hexdigest()[:32]

    @property
    def model_file(self) -> Path:
        """Where the built hybrid model lives (plans inside it)."""
        return self.directory / f"hybrid-{self.key}.onnx"

    @property
    def engine_cache(self) -> Path:
        """The engine cache folder of online predictors with ``use_static`` (plans built at
        convert, at load or at run time with ``allow_build_at_runtime``, under ``engines/``)."""
        return self.directory

    @property
    def calibration_table(self) -> Path:
        """The INT8 calibration table (ranges of every calibrated tensor)."""
        return self.directory / f"calibration-{self.calibration_key}.json"

    def check_writable(self, needs: str, instead: str) -> None:
        """Fail clearly when the model folder cannot hold ``_opt_cache/`` (``needs``: the
        setting that writes there; ``instead``: what the user can do otherwise)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".probe-{threading.get_ident()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"{needs} in {self.directory}, which cannot be written "
                              f"({exc.strerror or exc}): make the model folder writable, or "
                              f"{instead}") from exc

    @contextmanager
    def building(self, across_processes: bool) -> Iterator[None]:
        """One builder per key: across threads (a lock) and, when the result goes to disk,
        across processes (a file lock in ``_opt_cache/``)."""
        with _GUARD:
            lock = _THREAD_LOCKS.setdefault(self.key, threading.Lock())
        with lock:
            if not across_processes:
                yield
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            with filelock.FileLock(str(self.directory / f".{self.key}.lock")):
                yield
