"""``hybridtrt.serve.deployment``: a hybrid model as a Ray Serve application."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from google.protobuf.message import EncodeError

from hybridtrt.core.external import is_large
from hybridtrt.core.format import format_version
from hybridtrt.core.loading import read_onnx_file
from hybridtrt.core.references import inlined_model
from hybridtrt.errors import ConfigError
from hybridtrt.serve.settings import ServeSettings

__all__ = ["application", "deployment", "replica_model"]

_LOG = logging.getLogger("hybridtrt")


def deployment(model: str | os.PathLike[str], name: str | None = None, *, replicas: int = 1,
               gpus_per_replica: float = 0.0, max_batch_size: int = 8, batch_wait_ms: float = 5.0,
               max_ongoing_requests: int = 16, max_queued_requests: int | None = None,
               concurrent_batches: int = 1, batch_buckets: tuple[int, ...] | None = None) -> Any:
    """A Ray Serve application serving ``model`` over the Open Inference Protocol.

    Run it with ``serve.run(app, route_prefix="/")`` or compose it in a larger application.

    Args:
        model: A hybrid model, or a plain ONNX model (converted here, once, and handed to the
            replicas; over 2 GiB, saved in ``_opt_cache/serve/`` beside it for them to read).
            Every replica reads a hybrid model's path, so on a cluster it must be on shared
            storage.
        name: The model's name in the URLs (default: the file's stem).
        replicas, gpus_per_replica, max_batch_size, batch_wait_ms, max_ongoing_requests,
            max_queued_requests, concurrent_batches, batch_buckets: See ``ServeSettings``.

    Raises:
        ConfigError: A setting is out of range, or the model file does not exist.
        HybridTRTError: A plain model cannot be converted (the subclass says why).
        ModuleNotFoundError: Ray Serve is not installed (``pip install 'hybridtrt[serve]'``).
    """
    settings = ServeSettings(name or Path(model).stem, replicas, gpus_per_replica,
                             max_batch_size, batch_wait_ms, max_ongoing_requests,
                             max_queued_requests, concurrent_batches,
                             tuple(batch_buckets) if batch_buckets is not None else None)
    return application(model, settings)


def application(model: str | os.PathLike[str], settings: ServeSettings) -> Any:
    """``deployment``'s application from settings already made (``hybridtrt serve``'s way)."""
    path = Path(model).resolve()
    if not path.is_file():
        raise ConfigError(f"no model file at {path}")
    path, hybrid = replica_model(path)
    from ray import serve

    from hybridtrt.serve.server import ModelServer

    actor: dict[str, Any] = {"num_gpus": settings.gpus_per_replica}
    # The replica refuses requests past its limits itself (a 503 in the protocol's JSON), so
    # Ray may send it more than it takes (room for the quick refusals) and queues none itself.
    taken = settings.max_ongoing_requests + settings.queue_limit
    return serve.deployment(
        name=f"hybridtrt-{settings.name}", num_replicas=settings.replicas,
        ray_actor_options=actor, max_ongoing_requests=taken + settings.max_ongoing_requests,
        max_queued_requests=-1,
    )(ModelServer).bind(str(path), settings, hybrid)


def replica_model(path: Path) -> tuple[Path, bytes | None]:
    """What the replicas read: ``(path, None)`` for a hybrid model, which they read themselves;
    a plain ONNX model converted once, here, not in every replica: ``(path, its bytes)``, or,
    over protobuf's 2 GiB (weights and plans), ``(the converted model saved beside it in
    _opt_cache/serve/, None)``."""
    if format_version(read_onnx_file(path, load_weights=False)) is not None:
        return path, None
    from hybridtrt.tools.target import load_target

    hybrid = load_target(path).hybrid
    if not is_large(hybrid.model):
        try:  # (weights left in the source file read in; plans count too, and is_large skips them)
            return path, inlined_model(hybrid.model).SerializeToString()
        except (ValueError, EncodeError):  # protobuf's 2 GiB limit
            pass
    saved = path.parent / "_opt_cache" / "serve" / f"{path.stem}.hybrid.onnx"
    try:
        saved.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: the converted model is over 2 GiB and is saved for the "
                          f"replicas in {saved.parent}, which cannot be made ({exc}): convert "
                          "it first (hybridtrt convert) and serve the hybrid model") from exc
    _LOG.info("%s converted is over 2 GiB: saved as %s for the replicas", path, saved)
    return Path(hybrid.save(saved)), None
