"""A real model served by a local Ray Serve over the Open Inference Protocol: every answer the
Predictor's, batching that changes nothing, 400s naming the input, 503 in the protocol's JSON on
overload; a plain model with a 0-d input converted once for all its replicas."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.examples import paddleocr_model
from hybridtrt.runtime import Config, Predictor, create_predictor

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
from hybridtrt.serve import deployment  # noqa: E402  (after the skip: it needs Ray)

WIDTH = 80  # the rec model's text line width in this test (the profile fixes it)
OUTPUT = "softmax_11.tmp_0"
TIMEOUT = 60  # seconds any one HTTP call may take


class Served:
    """The running server: its URL, Ray's metrics URL and the Predictor the answers must equal."""

    def __init__(self, url: str, metrics: str, predictor: Predictor) -> None:
        self.url = url
        self.metrics = metrics
        self.predictor = predictor

    def get(self, path: str) -> tuple[int, dict]:
        return self.call(urllib.request.Request(self.url + path))

    def infer(self, body: dict) -> tuple[int, dict, str | None]:
        request = urllib.request.Request(self.url + "/v2/models/rec/infer",
                                         json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                return (answer.status, json.loads(answer.read()),
                        answer.headers["Hybridtrt-Batch-Size"])
        except urllib.error.HTTPError as exc:
            return exc.code, _decoded(exc.read()), None

    def call(self, request: urllib.request.Request) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decoded(exc.read())

    def expected(self, x: np.ndarray) -> np.ndarray:
        return self.predictor.run([OUTPUT], {"x": x})[0]


def _decoded(body: bytes) -> dict:
    """An error's JSON (ours), or Ray Serve's own plain-text one as ``{"text": ...}``."""
    try:
        return json.loads(body)
    except ValueError:
        return {"text": body.decode(errors="replace")}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    shape = lambda rows: (rows, 3, 48, WIDTH)  # noqa: E731
    config = TensorRTConfig(inputs=[Input(name="x", min_input_shape=shape(1),
                                          optim_input_shape=shape(4), max_input_shape=shape(8))])
    folder = tmp_path_factory.mktemp("serve")
    path = convert(str(paddleocr_model("rec")), config).save(folder / "rec.onnx")
    port, metrics = _free_port(), _free_port()
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"HYBRIDTRT_BACKEND": os.environ["HYBRIDTRT_BACKEND"]}},
             _metrics_export_port=metrics, _system_config={"metrics_report_interval_ms": 500})
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        # (buckets as on a GPU: every batch run padded to 1, 2, 4 or 8 rows)
        serve.run(deployment(path, "rec", max_batch_size=8, batch_wait_ms=30,
                             max_ongoing_requests=16, max_queued_requests=16,
                             concurrent_batches=2, batch_buckets=(1, 2, 4, 8)),
                  name="rec", route_prefix="/")
        yield Served(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics}/metrics",
                     create_predictor(Config(str(path))))
    finally:
        serve.shutdown()
        ray.shutdown()


def line(seed: int, rows: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((rows, 3, 48, WIDTH), dtype=np.float32)


def as_json(x: np.ndarray, **extra: object) -> dict:
    return {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                        "data": x.ravel().tolist()}], **extra}


def test_health_readiness_and_metadata(served: Served) -> None:
    assert served.get("/v2/health/live") == (200, {"live": True})
    assert served.get("/v2/health/ready") == (200, {"ready": True})
    assert served.get("/v2/models/rec/ready")[0] == 200
    status, meta = served.get("/v2/models/rec")
    assert status == 200
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3, -1, -1]}]
    assert meta["outputs"] == [{"name": OUTPUT, "datatype": "FP32", "shape": [-1, -1, 6625]}]
    status, body = served.get("/v2/models/det")
    assert status == 404 and "unknown model 'det'" in body["error"]


def test_concurrent_json_clients_get_the_predictors_answers_batched(served: Served) -> None:
    def client(k: int) -> list[tuple[np.ndarray, int, dict, str | None]]:
        done = []
        for n in range(3):
            x = line(100 * k + n, rows=1 + (k + n) % 2)
            done.append((x, *served.infer(as_json(x, id=f"{k}-{n}"))))
        return done

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = [r for rs in pool.map(client, range(16), timeout=120) for r in rs]
    assert len(results) == 48
    rows = []
    for x, status, body, batch in results:
        assert status == 200, body
        (answer,) = body["outputs"]
        assert answer["name"] == OUTPUT and answer["shape"] == [x.shape[0], WIDTH // 8, 6625]
        got = np.array(answer["data"], np.float32).reshape(answer["shape"])
        np.testing.assert_allclose(got, served.expected(x), rtol=1e-4, atol=1e-5)
        rows.append(int(batch))
    assert max(rows) > 2, f"no request was batched with another: batch sizes {sorted(rows)}"
    assert max(rows) <= 8  # (the profile's and --max-batch-size's maximum)


def test_a_run_padded_to_its_bucket_answers_as_the_predictor(served: Served) -> None:
    for rows, padded in ((3, "4"), (5, "8"), (4, None)):
        x = line(7 + rows, rows=rows)
        request = urllib.request.Request(served.url + "/v2/models/rec/infer",
                                         json.dumps(as_json(x)).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            assert answer.headers["Hybridtrt-Batch-Size"] == str(rows)
            assert answer.headers.get("Hybridtrt-Batch-Padded") == padded
            (out,) = json.loads(answer.read())["outputs"]
        assert out["shape"] == [rows, WIDTH // 8, 6625]
        got = np.array(out["data"], np.float32).reshape(out["shape"])
        np.testing.assert_allclose(got, served.expected(x), rtol=1e-4, atol=1e-5)


def _batch_metrics(url: str) -> tuple[float, float, float]:
    """Ray's export of ``hybridtrt_batch_size``: runs, runs of one row, requests answered 200."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
        text = answer.read().decode()
    runs = single = ok = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model") != "rec":
                continue
            if sample.name == "ray_hybridtrt_batch_size_count":
                runs += sample.value
            elif sample.name == "ray_hybridtrt_batch_size_bucket" and sample.labels["le"] == "1.0":
                single += sample.value
            elif sample.name == "ray_hybridtrt_requests_total" and sample.labels["code"] == "200":
                ok += sample.value
    return runs, single, ok


def test_the_batch_size_metric_sees_batches_of_several_rows(served: Served) -> None:
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda k: served.infer(as_json(line(k)))[0], range(16), timeout=120))
    assert codes == [200] * 16
    deadline = time.monotonic() + 20  # (replicas report every 0.5 s here)
    runs = single = ok = 0.0
    while time.monotonic() < deadline and not (runs > single and ok >= 16):
        time.sleep(0.5)
        runs, single, ok = _batch_metrics(served.metrics)
    assert ok >= 16, f"requests answered 200 per the metrics: {ok}"
    assert runs > single, f"{runs} batch runs, {single} of them of one row"


def test_tritonclient_binary_tensors_get_the_predictors_answers(served: Served) -> None:
    http = pytest.importorskip("tritonclient.http")
    host = served.url.removeprefix("http://")

    # (no close(): tritonclient's joins its gevent pool there, which gevent calls a deadlock)
    triton = http.InferenceServerClient(host, concurrency=16, network_timeout=TIMEOUT)
    assert triton.is_server_live() and triton.is_model_ready("rec")
    sent = []
    for k in range(48):  # 16 connections, three requests each, in flight together
        x = line(7000 + k, rows=1 + k % 3)
        given = http.InferInput("x", list(x.shape), "FP32")
        given.set_data_from_numpy(x)
        sent.append((x, triton.async_infer("rec", [given],
                                           outputs=[http.InferRequestedOutput(OUTPUT)])))
    for x, pending in sent:
        np.testing.assert_allclose(pending.get_result(timeout=TIMEOUT).as_numpy(OUTPUT),
                                   served.expected(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("entry, message", [
    ({"name": "image", "datatype": "FP32", "shape": [1], "data": [0.0]}, "unknown input 'image'"),
    ({"name": "x", "datatype": "INT64", "shape": [1, 3, 48, WIDTH], "data": [0] * (144 * WIDTH)},
     "input 'x' has datatype INT64; the model expects FP32"),
    ({"name": "x", "datatype": "FP32", "shape": [1, 3, 48], "data": [0.0] * 144},
     "input 'x' has rank 3"),
    ({"name": "x", "datatype": "FP32", "shape": [1, 3, 48, 96], "data": [0.0] * (144 * 96)},
     r"built for x: .*; got x: \[1, 3, 48, 96\]\. send shapes within these ranges"),  # no config advice
])
def test_bad_requests_are_400_naming_the_input(served: Served, entry: dict, message: str) -> None:
    status, body, _ = served.infer({"inputs": [entry]})
    assert status == 400
    assert re.search(message, body["error"]), body["error"]


def test_overload_is_503_and_the_server_keeps_answering(served: Served) -> None:
    x = line(5, rows=8)
    raw = x.tobytes()
    head = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                                   "parameters": {"binary_data_size": len(raw)}}],
                       "outputs": [{"name": OUTPUT, "parameters": {"binary_data": True}}]}).encode()

    def send(_: int) -> tuple[int, bytes]:
        request = urllib.request.Request(served.url + "/v2/models/rec/infer", head + raw,
                                         {"Inference-Header-Content-Length": str(len(head))})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                head_length = int(answer.headers["Inference-Header-Content-Length"])
                return answer.status, answer.read()[head_length:]
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(96) as pool:
        answers = list(pool.map(send, range(96), timeout=120))
    codes = sorted(code for code, _ in answers)
    assert set(codes) <= {200, 503} and 503 in codes and 200 in codes, codes
    expected = served.expected(x)
    for code, data in answers:
        if code == 200:
            np.testing.assert_allclose(np.frombuffer(data, np.float32).reshape(expected.shape),
                                       expected, rtol=1e-4, atol=1e-5)
        else:  # the protocol's error JSON, not Ray Serve's text
            error = json.loads(data)["error"]
            assert "the server is overloaded" in error and "16 requests" in error, error
    assert time.monotonic() - started < 120
    assert served.get("/v2/health/ready") == (200, {"ready": True})


def test_a_replica_killed_under_load_fails_its_requests_cleanly_and_comes_back(
        served: Served) -> None:
    x = line(11, rows=2)
    expected = served.expected(x)

    def send(_: int) -> int:
        return served.infer(as_json(x))[0]

    def replicas() -> list[dict]:
        return [a for a in ray.util.list_named_actors(all_namespaces=True)
                if "SERVE_REPLICA" in a["name"] and "hybridtrt-rec" in a["name"]]

    (killed,) = replicas()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        pending = [pool.submit(send, k) for k in range(16)]
        time.sleep(0.3)
        ray.kill(ray.get_actor(killed["name"], namespace=killed["namespace"]))
        codes = [p.result(timeout=TIMEOUT) for p in pending]  # every one answered: no hang
    assert set(codes) <= {200, 500, 502, 503}, codes
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body, _ = served.infer(as_json(x))
        if status == 200:
            break
        time.sleep(0.5)
    assert status == 200, body
    names = [a["name"] for a in replicas()]
    assert names and names != [killed["name"]], names  # Ray Serve made a new one
    got = np.array(body["outputs"][0]["data"], np.float32).reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _scalar_model(path: str) -> None:
    """y = 2x + 1 on a 0-d float input."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["t"]),
         helper.make_node("Add", ["t", "one"], ["y"])],
        "scalar", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
         helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.fixture(scope="module")
def scalar(served: Served, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, list[str], Predictor]]:
    """A plain model with a 0-d input served by two replicas on the same cluster; the plain file
    is gone before they start (they get the model converted here); the log of the conversion."""
    plain = tmp_path_factory.mktemp("scalar") / "scalar.onnx"
    _scalar_model(str(plain))
    from hybridtrt.tools.target import load_target

    predictor = load_target(plain).predictor()
    records, log = _Records(), logging.getLogger("hybridtrt")
    level = log.level
    log.addHandler(records)
    log.setLevel(logging.INFO)
    try:
        app = deployment(plain, "scalar", replicas=2)
    finally:
        log.removeHandler(records)
        log.setLevel(level)
    plain.unlink()
    serve.run(app, name="scalar", route_prefix="/scalar")
    try:
        yield served.url + "/scalar/v2/models/scalar/infer", records.messages, predictor
    finally:
        serve.delete("scalar")


def test_a_plain_model_is_converted_once_for_all_replicas(
        scalar: tuple[str, list[str], Predictor]) -> None:
    _, messages, _ = scalar
    converted = [m for m in messages if "is a plain ONNX model: converting it first" in m]
    assert len(converted) == 1, messages  # in the driver; the replicas never saw the plain file
    assert sum(1 for a in ray.util.list_named_actors(all_namespaces=True)
               if "SERVE_REPLICA" in a["name"] and "hybridtrt-scalar" in a["name"]) == 2


def test_a_0d_input_through_json_equals_the_predictor(
        scalar: tuple[str, list[str], Predictor]) -> None:
    url, _, predictor = scalar
    for value in (3.0, -0.25, 1e3):
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [], "data": [value]}]}
        request = urllib.request.Request(url, json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            assert answer.status == 200 and answer.headers["Hybridtrt-Batch-Size"] == "1"
            (out,) = json.loads(answer.read())["outputs"]
        (expected,) = predictor.run(["y"], {"x": np.array(value, np.float32)})
        assert out["name"] == "y" and out["shape"] == [] and out["datatype"] == "FP32"
        np.testing.assert_allclose(np.array(out["data"], np.float32).reshape(()), expected)
