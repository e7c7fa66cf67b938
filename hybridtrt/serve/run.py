"""``hybridtrt serve``: start Ray (a local cluster, or join one), run the deployment, and stop
cleanly on SIGINT or SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from hybridtrt.core.loading import read_onnx_file
from hybridtrt.errors import ConfigError
from hybridtrt.serve.deployment import application
from hybridtrt.serve.settings import ServeSettings

__all__ = ["serve_until_stopped"]


def serve_until_stopped(model: str | os.PathLike[str], settings: ServeSettings, host: str,
                        port: int, address: str | None = None,
                        announce: Callable[[str], None] = print) -> None:
    """Serve ``model`` at ``http://host:port/v2/models/{name}`` until SIGINT or SIGTERM.

    Args:
        model: A hybrid model, or a plain ONNX model (converted once, before the replicas start).
        settings: How the model is served.
        host, port: Where Ray Serve's HTTP proxy listens.
        address: A running Ray cluster to join (``ray://...`` or ``auto``); None starts a
            local one for this process.
        announce: Says where the model is served, once it is ready.

    Raises:
        ModelLoadError: ``model`` is missing or not ONNX.
        ConfigError: The port is taken (local cluster).
        HybridTRTError: A plain model cannot be converted (before Ray starts).
    """
    read_onnx_file(model, load_weights=False)  # a wrong file fails before Ray starts
    if address is None:
        _require_free(host, port)
    app = application(Path(model), settings)  # (a plain model is converted here, once)
    import ray
    from ray import serve

    if address is None:
        ray.init(num_cpus=max(os.cpu_count() or 1, settings.replicas), include_dashboard=False)
    else:
        ray.init(address=address)
    stop = threading.Event()
    previous = {s: signal.signal(s, _setter(stop)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(app, name=settings.name, route_prefix="/")
        if not stop.is_set():
            announce(f"serving {settings.name} at http://{host}:{port}/v2/models/{settings.name} "
                     "(Ctrl-C stops)")
        while not stop.wait(0.5):
            pass
        announce("stopping")
    finally:
        if address is None:
            serve.shutdown()
        else:
            serve.delete(settings.name)  # (the cluster and its other applications stay)
        ray.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _setter(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()
    return handle


def _require_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): pick another "
                              "--port, or stop what uses it") from exc
