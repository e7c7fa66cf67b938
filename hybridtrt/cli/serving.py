"""``hybridtrt serve``: a hybrid (or plain ONNX) model on Ray Serve over the Open Inference
Protocol; Ray Serve is imported only when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hybridtrt.cli.flags import add_verbosity

__all__ = ["add_serve", "serve_command"]


def add_serve(commands: Any) -> None:
    """The ``serve`` command and its flags."""
    serve = commands.add_parser("serve", help="serve a hybrid (or plain ONNX) model on Ray Serve "
                                "over the Open Inference Protocol (KServe v2 REST)")
    serve.add_argument("model", help="hybrid model, or a plain ONNX model (converted first)")
    serve.add_argument("--name", help="the model's name in the URLs (default: the file's stem)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.add_argument("--replicas", type=int, default=1, help="replicas, each with its own "
                       "Predictor (default 1)")
    serve.add_argument("--gpus-per-replica", type=float, default=0.0,
                       help="GPUs Ray gives each replica (default 0: the CPU)")
    serve.add_argument("--max-batch-size", type=int, default=8,
                       help="most rows a batch run takes; the engines' profiles may cap it "
                            "lower (default 8)")
    serve.add_argument("--batch-wait-ms", type=float, default=5.0,
                       help="how long to wait for requests to fill a batch (default 5)")
    serve.add_argument("--max-ongoing-requests", type=int, default=16,
                       help="requests a replica works on at once (default 16)")
    serve.add_argument("--max-queued-requests", type=int,
                       help="requests waiting beyond those; more get 503 (default 4x ongoing)")
    serve.add_argument("--concurrent-batches", type=int, default=1,
                       help="batches a replica runs at once, each on its own Predictor clone "
                            "(default 1)")
    serve.add_argument("--batch-buckets", type=_buckets, metavar="ROWS,...",
                       help="row counts batch runs are padded up to, each on Predictors of its "
                            "own ('none': never pad; default: powers of two up to the max "
                            "batch size on a GPU, none on the CPU)")
    serve.add_argument("--address", help="join this Ray cluster (ray://HOST:10001, or auto) "
                       "instead of starting a local one")
    add_verbosity(serve)


def _buckets(text: str) -> tuple[int, ...]:
    """``--batch-buckets``: "1,2,4,8", or "none" for no padding."""
    if text.strip().lower() == "none":
        return ()
    try:
        found = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected row counts such as 1,2,4,8 or 'none', got "
                                         f"{text!r}") from None
    return found


def serve_command(args: argparse.Namespace) -> int:
    """``hybridtrt serve``: serve until SIGINT or SIGTERM, saying where once it is ready."""
    from hybridtrt.serve import ServeSettings
    from hybridtrt.serve.run import serve_until_stopped

    settings = ServeSettings(args.name or Path(args.model).stem, args.replicas,
                             args.gpus_per_replica, args.max_batch_size, args.batch_wait_ms,
                             args.max_ongoing_requests, args.max_queued_requests,
                             args.concurrent_batches, args.batch_buckets)
    serve_until_stopped(args.model, settings, args.host, args.port, args.address,
                        lambda line: print(line, flush=True))
    return 0
