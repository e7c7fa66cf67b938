"""``hybridtrt.serve.deployment``: a hybrid model as a Ray Serve application."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hybridtrt.errors import ConfigError
from hybridtrt.serve.settings import ServeSettings

__all__ = ["application", "deployment"]


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
    settings = ServeSettings(name or Path(model).stem, replicas, gpus_per_replica,
                             max_batch_size, batch_wait_ms, max_ongoing_requests,
                             max_queued_requests, concurrent_batches)
    return application(model, settings)


def application(model: str | os.PathLike[str], settings: ServeSettings) -> Any:
    """``deployment``'s application from settings already made (``hybridtrt serve``'s way)."""
    path = Path(model).resolve()
    if not path.is_file():
        raise ConfigError(f"no model file at {path}")
    from ray import serve

    from hybridtrt.serve.server import ModelServer

    actor: dict[str, Any] = {"num_gpus": settings.gpus_per_replica}
    return serve.deployment(
        name=f"hybridtrt-{settings.name}", num_replicas=settings.replicas,
        ray_actor_options=actor, max_ongoing_requests=settings.max_ongoing_requests,
        max_queued_requests=settings.queue_limit,
    )(ModelServer).bind(str(path), settings)
