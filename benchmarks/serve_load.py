"""Load on ``hybridtrt.serve`` over localhost: throughput and p50/p99 latency per batch setting.

Serves a model (default: PaddleOCR rec, converted for 1..8 lines of 48x80) on a local Ray
Serve, then for each ``--max-batch-size`` sends ``--requests`` binary-tensor infer requests from
``--concurrency`` clients and prints one row per setting.

    python benchmarks/serve_load.py --batch-sizes 1 4 8 --concurrency 16 --requests 128
    python benchmarks/serve_load.py --gpus-per-replica 1   # on a GPU host
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.examples import paddleocr_model

TIMEOUT = 120  # seconds one request may take


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rec_model(folder: Path) -> Path:
    shape = lambda rows: (rows, 3, 48, 80)  # noqa: E731
    config = TensorRTConfig(inputs=[Input(name="x", min_input_shape=shape(1),
                                          optim_input_shape=shape(4), max_input_shape=shape(8))])
    return convert(str(paddleocr_model("rec")), config).save(folder / "rec.onnx")


def _body(name: str, x: np.ndarray) -> tuple[bytes, int]:
    raw = x.tobytes()
    head = json.dumps({"inputs": [{"name": name, "datatype": "FP32", "shape": list(x.shape),
                                   "parameters": {"binary_data_size": len(raw)}}],
                       "parameters": {"binary_data_output": True}}).encode()
    return head + raw, len(head)


def _send(url: str, body: bytes, head: int) -> tuple[float, int, int]:
    """Seconds, status and the batch rows of one request."""
    request = urllib.request.Request(url, body, {"Inference-Header-Content-Length": str(head)})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            answer.read()
            rows = int(answer.headers["Hybridtrt-Batch-Size"])
            return time.perf_counter() - started, answer.status, rows
    except urllib.error.HTTPError as exc:
        return time.perf_counter() - started, exc.code, 0


def _load(url: str, body: bytes, head: int, concurrency: int, requests: int) -> str:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(lambda _: _send(url, body, head), range(requests), timeout=600))
    wall = time.perf_counter() - started
    ok = [d for d in done if d[1] == 200]
    seconds = np.array([d[0] for d in ok]) * 1000.0
    p50, p99 = (np.percentile(seconds, q) for q in (50, 99)) if ok else (float("nan"),) * 2
    rows = np.mean([d[2] for d in ok]) if ok else float("nan")
    return (f"{len(ok):>4}/{requests:<4} {wall:8.2f} {len(ok) / wall:9.1f} {p50:8.1f} {p99:8.1f} "
            f"{rows:10.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="hybrid or ONNX model (default: rec)")
    parser.add_argument("--input", default="x", help="its one FP32 input (default x)")
    parser.add_argument("--shape", default="1x3x48x80", help="one request's shape")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=128, help="per setting")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--gpus-per-replica", type=float, default=0.0)
    parser.add_argument("--batch-buckets", default=None,
                        help="as hybridtrt serve's (default: its default for the device)")
    args = parser.parse_args(argv)
    import ray
    from ray import serve

    from hybridtrt.serve import ServeSettings, deployment

    x = np.random.default_rng(0).random(tuple(int(d) for d in args.shape.split("x")),
                                        dtype=np.float32)
    body, head = _body(args.input, x)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="serve-load-") as scratch:
        model = args.model or _rec_model(Path(scratch))
        ray.init(num_cpus=max(2, args.replicas), include_dashboard=False, log_to_driver=False)
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            buckets = (None if args.batch_buckets is None else () if args.batch_buckets == "none"
                       else tuple(int(b) for b in args.batch_buckets.split(",")))
            print(f"model {Path(model).name}, request {args.shape}, {args.concurrency} clients, "
                  f"{args.replicas} replica(s), {args.gpus_per_replica} GPU each, batch buckets "
                  f"{args.batch_buckets or 'default'}")
            print("max_batch  ok/sent   seconds  req_per_s   p50_ms   p99_ms  mean_rows  buckets")
            for size in args.batch_sizes:
                chosen = tuple(b for b in buckets if b <= size) if buckets is not None else None
                app = deployment(model, "load", replicas=args.replicas,
                                 gpus_per_replica=args.gpus_per_replica, max_batch_size=size,
                                 batch_wait_ms=args.batch_wait_ms,
                                 max_ongoing_requests=max(args.concurrency, size),
                                 max_queued_requests=args.concurrency, batch_buckets=chosen)
                serve.run(app, name="load", route_prefix="/")
                url = f"http://127.0.0.1:{port}/v2/models/load/infer"
                _load(url, body, head, args.concurrency, args.concurrency)  # warm-up
                used = ServeSettings("load", gpus_per_replica=args.gpus_per_replica,
                                     max_batch_size=size, batch_buckets=chosen).buckets
                print(f"{size:>9}  {_load(url, body, head, args.concurrency, args.requests)}  "
                      f"{','.join(map(str, used)) or '-'}", flush=True)
        finally:
            serve.shutdown()
            ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
