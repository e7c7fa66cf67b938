"""``hybridtrt.serve.deployment``: a hybrid model as a Ray Serve application."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from hybridtrt.errors import ConfigError

__all__ = ["ServeSettings", "deployment"]


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """How a model is served.

    Attributes:
        name: The model's name in the URLs (``/v2/models/{name}``).
        replicas: Ray Serve replicas, each with its own Predictor.
        gpus_per_replica: GPUs Ray gives each replica (0: run on the CPU).
        max_batch_size: Most rows one batch run takes (the engines' profiles may allow fewer).
        batch_wait_ms: How long a replica waits for more requests to fill a batch.
        max_ongoing_requests: Requests a replica works on at once (batches are formed from them).
        max_queued_requests: Requests waiting for a replica; past them the answer is 503
            (None: four times ``max_ongoing_requests``).
        concurrent_batches: Batches a replica runs at once, each on its own Predictor (the
            first and its clones, sharing the loaded model).
    """

    name: str
    replicas: int = 1
    gpus_per_replica: float = 0.0
    max_batch_size: int = 8
    batch_wait_ms: float = 5.0
    max_ongoing_requests: int = 16
    max_queued_requests: int | None = None
    concurrent_batches: int = 1

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ConfigError(f"the model name must be non-empty and have no '/', got "
                              f"{self.name!r}")
        for field, low in (("replicas", 1), ("max_batch_size", 1), ("max_ongoing_requests", 1),
                           ("concurrent_batches", 1)):
            if getattr(self, field) < low:
                raise ConfigError(f"{field} must be >= {low}, got {getattr(self, field)}")
        if self.gpus_per_replica < 0 or self.batch_wait_ms < 0:
            raise ConfigError(f"gpus_per_replica and batch_wait_ms must be >= 0, got "
                              f"{self.gpus_per_replica} and {self.batch_wait_ms}")
        if self.max_queued_requests is not None and self.max_queued_requests < 0:
            raise ConfigError(f"max_queued_requests must be >= 0, got {self.max_queued_requests}")

    @property
    def queue_limit(self) -> int:
        """``max_queued_requests`` as Ray Serve takes it."""
        if self.max_queued_requests is None:
            return 4 * self.max_ongoing_requests
        return self.max_queued_requests


def deployment(model: str | os.PathLike[str], name: str | None = None, *, replicas: int = 1,
               gpus_per_replica: float = 0.0, max_batch_size: int = 8, batch_wait_ms: float = 5.0,
               max_ongoing_requests: int = 16, max_queued_requests: int | None = None,
               concurrent_batches: int = 1) -> Any:
    """A Ray Serve application serving ``model`` over the Open Inference Protocol.

    Run it with ``serve.run(app, route_prefix="/")`` or compose it in a larger application.

    Args:
        model: A hybrid model, or a plain ONNX model (each replica converts it first). Every
            replica reads this path, so on a cluster it must be on shared storage.
        name: The model's name in the URLs (default: the file's stem).
        replicas, gpus_per_replica, max_batch_size, batch_wait_ms, max_ongoing_requests,
            max_queued_requests, concurrent_batches: See ``ServeSettings``.

    Raises:
        ConfigError: A setting is out of range, or the model file does not exist.
        ModuleNotFoundError: Ray Serve is not installed (``pip install 'hybridtrt[serve]'``).
    """
    path = Path(model).resolve()
    if not path.is_file():
        raise ConfigError(f"no model file at {path}")
    settings = ServeSettings(name or path.stem, replicas, gpus_per_replica, max_batch_size,
                             batch_wait_ms, max_ongoing_requests, max_queued_requests,
                             concurrent_batches)
    from ray import serve

    from hybridtrt.serve.server import ModelServer

    actor: dict[str, Any] = {"num_gpus": settings.gpus_per_replica}
    return serve.deployment(
        name=f"hybridtrt-{settings.name}", num_replicas=settings.replicas,
        ray_actor_options=actor, max_ongoing_requests=settings.max_ongoing_requests,
        max_queued_requests=settings.queue_limit,
    )(ModelServer).bind(str(path), settings)
