"""``hybridtrt serve`` as a user runs it: a plain ONNX model converted and served, answers equal to
ONNX Runtime on the original, SIGINT or SIGTERM stops it; bad settings fail before Ray starts."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from hybridtrt.cli import main
from hybridtrt.examples import onnx_light_model

pytest.importorskip("ray.serve")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_wrong_settings_and_files_fail_before_ray_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(onnx_light_model("squeezenet"))
    assert main(["serve", model, "--replicas", "0"]) == 2
    assert "replicas must be >= 1, got 0" in capsys.readouterr().err
    assert main(["serve", model, "--batch-buckets", "1,16"]) == 2
    assert "batch_buckets must lie in 1..max_batch_size (8), got [1, 16]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", model, "--batch-buckets", "1,two"])
    assert "expected row counts such as 1,2,4,8 or 'none', got '1,two'" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "missing.onnx")]) == 1
    assert "missing.onnx" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", model, "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def _lines(stream: object, into: queue.Queue) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_a_plain_onnx_model_then_a_signal_stops_it(stop: signal.Signals) -> None:
    model = onnx_light_model("squeezenet")
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "hybridtrt", "serve", str(model), "--port",
                               str(port), "--name", "squeeze"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    printed: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(server.stdout, printed), daemon=True).start()
    errors: list[str] = []
    threading.Thread(target=lambda: errors.extend(server.stderr), daemon=True).start()
    try:
        deadline = time.monotonic() + 90
        line = ""
        while "serving squeeze" not in line and time.monotonic() < deadline:
            try:
                line = printed.get(timeout=1)
            except queue.Empty:
                assert server.poll() is None, "".join(errors)[-3000:]
        assert f"at http://127.0.0.1:{port}/v2/models/squeeze" in line, "".join(errors)[-3000:]
        x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
        body = json.dumps({"inputs": [{"name": "data_0", "datatype": "FP32",
                                       "shape": [1, 3, 224, 224], "data": x.ravel().tolist()}]})
        url = f"http://127.0.0.1:{port}/v2/models/squeeze/infer"
        request = urllib.request.Request(url, body.encode())
        with urllib.request.urlopen(request, timeout=60) as answer:
            (out,) = json.loads(answer.read())["outputs"]
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        (expected,) = session.run([out["name"]], {"data_0": x})
        np.testing.assert_allclose(np.array(out["data"], np.float32).reshape(out["shape"]),
                                   expected, rtol=1e-4, atol=1e-5)
        server.send_signal(stop)
        assert server.wait(timeout=60) == 0  # drained and stopped within 60 s
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
    assert "Traceback" not in "".join(errors)
