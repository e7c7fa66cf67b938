"""The Ray Serve replica: one Predictor, dynamic batching, and the Open Inference Protocol's
REST routes as thin handlers over them."""

import asyncio
import dataclasses
import logging
import queue
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from ray import serve

from hybridtrt.version import __version__
from hybridtrt.cli.common import client_words
from hybridtrt.core.hybrid import HybridModel, load
from hybridtrt.errors import HybridTRTError, InputError
from hybridtrt.runtime.config import RuntimeSettings
from hybridtrt.runtime.predictor import Predictor
from hybridtrt.serve.admission import Admission
from hybridtrt.serve.batching import (Item, bucket, concatenate, group, layout, pad, row_limit,
                                      split, warmup_feeds)
from hybridtrt.serve.settings import ServeSettings
from hybridtrt.serve.metrics import ServeMetrics
from hybridtrt.serve.protocol import (HEADER_LENGTH, encode_response, model_metadata,
                                      parse_request, tensor_spec)

__all__ = ["BATCH_HEADER", "PADDED_HEADER", "ModelServer"]

BATCH_HEADER = "Hybridtrt-Batch-Size"  # rows of the batch run that answered the request
PADDED_HEADER = "Hybridtrt-Batch-Padded"  # the rows that run was padded to (when it was)

_LOG = logging.getLogger("hybridtrt.serve")

app = FastAPI(title="hybridtrt")


@dataclasses.dataclass(frozen=True)
class _Queued:
    """A request waiting in the batch queue; ``weight``: the rows it counts for there."""

    item: Item
    weight: int


@dataclasses.dataclass(frozen=True)
class _Answer:
    """A request's outputs and the rows of the run that made them, or the error it got."""

    outputs: dict[str, Any] | None = None
    rows: int = 0
    error: HybridTRTError | None = None
    padded: int = 0  # the rows the run was padded to (0: not padded)


def _weight(batch: list[_Queued]) -> int:
    return sum(q.weight for q in batch)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@serve.ingress(app)
class ModelServer:
    """A replica serving one hybrid model (made by ``hybridtrt.serve.deployment``).

    Args:
        model: The hybrid model file, or the plain ONNX file ``hybrid`` was converted from.
        settings: How the model is served.
        hybrid: The serialized hybrid model, when the driver converted a plain model (None:
            read ``model``).
    """

    def __init__(self, model: str, settings: ServeSettings, hybrid: bytes | None = None) -> None:
        self.settings = settings
        loaded = load(model) if hybrid is None else HybridModel(onnx.load_from_string(hybrid))
        # Ray gives the replica its GPUs as CUDA_VISIBLE_DEVICES: device 0 is its own.
        chosen = RuntimeSettings(Path(model), use_gpu=settings.gpus_per_replica > 0, device_id=0)
        self._predictor = Predictor(chosen, hybrid=loaded)
        self._inputs = [tensor_spec(a) for a in self._predictor.get_inputs()]
        self._outputs = [tensor_spec(a) for a in self._predictor.get_outputs()]
        self._output_names = [s.name for s in self._outputs]
        self._layout = layout(self._predictor.get_inputs(), self._predictor.get_outputs(),
                              [(e.input_names, e.profiles) for e in loaded.engines])
        self._metrics = ServeMetrics(settings.name)
        self._admission = Admission(settings.max_ongoing_requests, settings.queue_limit)
        self._pools = self._make_pools()
        self._batched = serve.batch(max_batch_size=settings.max_batch_size,
                                    batch_wait_timeout_s=settings.batch_wait_ms / 1000.0,
                                    max_concurrent_batches=settings.concurrent_batches,
                                    batch_size_fn=_weight)(self._run_batch)

    def _make_pools(self) -> dict[int, queue.SimpleQueue[Predictor]]:
        """The Predictor and its clones, one per batch run at a time (they share the model):
        by bucket (0: runs not padded), each bucket's warmed up on its shape where known."""
        pools: dict[int, queue.SimpleQueue[Predictor]] = {}
        buckets = self.settings.buckets if self._layout.batched else ()
        for size in (0, *buckets):
            pool: queue.SimpleQueue[Predictor] = queue.SimpleQueue()
            for k in range(self.settings.concurrent_batches):
                made = self._predictor if size == 0 and k == 0 else self._predictor.clone()
                if size:
                    self._warm_up(made, size)
                pool.put(made)
            pools[size] = pool
        return pools

    def _warm_up(self, predictor: Predictor, rows: int) -> None:
        feeds = warmup_feeds(self._layout, self._predictor.get_inputs(), rows)
        if feeds is None:
            _LOG.info("bucket %d of '%s': the input shapes are not known before the first "
                      "request, which warms it up", rows, self.settings.name)
            return
        try:
            predictor.run_dict(feeds)
        except HybridTRTError as exc:
            _LOG.warning("bucket %d of '%s' did not warm up on zeros: %s", rows,
                         self.settings.name, exc)

    # health and metadata ----------------------------------------------------------------------

    @app.get("/v2")
    def server_metadata(self) -> dict[str, Any]:
        return {"name": "hybridtrt", "version": __version__, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live")
    def live(self) -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    def ready(self) -> dict[str, bool]:
        return {"ready": True}

    @app.get("/v2/models/{model}")
    @app.get("/v2/models/{model}/versions/{version}")
    def metadata(self, model: str) -> Response:
        return self._unknown(model) or JSONResponse(
            model_metadata(self.settings.name, self._inputs, self._outputs))

    @app.get("/v2/models/{model}/ready")
    @app.get("/v2/models/{model}/versions/{version}/ready")
    def model_ready(self, model: str) -> Response:
        return self._unknown(model) or JSONResponse({"name": model, "ready": True})

    def _unknown(self, model: str) -> JSONResponse | None:
        if model == self.settings.name:
            return None
        return _error(404, f"unknown model '{model}'; this server serves '{self.settings.name}'")

    # inference --------------------------------------------------------------------------------

    @app.post("/v2/models/{model}/infer")
    @app.post("/v2/models/{model}/versions/{version}/infer")
    async def infer(self, model: str, request: Request) -> Response:
        started = time.perf_counter()
        response: Response | None = self._unknown(model)
        if response is None:
            async with self._admission.admitted() as taken:
                response = await self._answer(request) if taken else self._overloaded()
        self._metrics.request(response.status_code, time.perf_counter() - started)
        return response

    def _overloaded(self) -> JSONResponse:
        return _error(503, f"the server is overloaded: this replica of '{self.settings.name}' "
                      f"works on {self._admission.ongoing} requests and holds "
                      f"{self._admission.queued} waiting; retry later")

    async def _answer(self, request: Request) -> Response:
        body = await request.body()
        try:
            header = request.headers.get(HEADER_LENGTH)
            if header is not None and not header.strip().isdigit():
                raise InputError(f"{HEADER_LENGTH} must be a byte count, got {header!r}")
            parsed = parse_request(body, self._inputs, self._output_names,
                                   int(header) if header is not None else None)
            item = Item(parsed.inputs, parsed.outputs)
            answer = await self._batched(_Queued(item, min(item.rows,
                                                           self.settings.max_batch_size)))
            if answer.error is not None:
                raise answer.error
        except InputError as exc:
            return _error(400, client_words(str(exc)))
        except HybridTRTError as exc:
            return _error(500, str(exc))
        content, head = encode_response(self.settings.name, answer.outputs or {}, parsed.binary,
                                        parsed.id)
        headers = {BATCH_HEADER: str(answer.rows)}
        if answer.padded:
            headers[PADDED_HEADER] = str(answer.padded)
        if head is None:
            return Response(content, media_type="application/json", headers=headers)
        headers[HEADER_LENGTH] = str(head)
        return Response(content, media_type="application/octet-stream", headers=headers)

    async def _run_batch(self, batch: list[_Queued]) -> list[_Answer]:
        """What ``serve.batch`` calls (``self._batched``) with the requests it gathered."""
        return await asyncio.to_thread(self._run_all, [q.item for q in batch])

    def _run_all(self, items: Sequence[Item]) -> list[_Answer]:
        """Every item's answer: items that may run as one are concatenated (``group``), padded
        to their bucket and run on a Predictor of that bucket."""
        answers: list[_Answer] = [_Answer()] * len(items)
        for run in group(self._layout, items, self.settings.max_batch_size):
            chosen = [items[k] for k in run]
            size = self._bucket(chosen)
            pool = self._pools[size]
            predictor = pool.get()
            try:
                together = self._run_together(predictor, chosen, size)
            finally:
                pool.put(predictor)
            for index, answer in zip(run, together):
                answers[index] = answer
        return answers

    def _bucket(self, items: Sequence[Item]) -> int:
        """The bucket a run of ``items`` goes to (0: none, not padded)."""
        if len(self._pools) == 1:
            return 0
        rows = sum(i.rows for i in items)
        limit = row_limit(self._layout, items[0], self.settings.max_batch_size)
        size = bucket(rows, self.settings.buckets, limit)
        return size if size in self._pools else 0

    def _run_together(self, predictor: Predictor, items: Sequence[Item],
                      size: int) -> list[_Answer]:
        rows = [i.rows for i in items]
        total = sum(rows)
        if len(items) > 1 or size > total:
            feeds = concatenate(items)
            try:
                merged = predictor.run_dict(pad(feeds, size) if size > total else feeds,
                                            items[0].outputs)
            except HybridTRTError:
                merged = None  # one of them is wrong, or the merged shape does not fit: alone
            extra = [size - total] if size > total else []
            parts = split(merged, rows + extra) if merged is not None else None
            if parts is not None:
                self._metrics.batch(total)
                padded = size if extra else 0
                return [_Answer(p, total, padded=padded) for p in parts[:len(items)]]
        return [self._run_alone(predictor, i) for i in items]

    def _run_alone(self, predictor: Predictor, item: Item) -> _Answer:
        try:
            outputs = predictor.run_dict(item.feeds, item.outputs)
        except HybridTRTError as exc:
            return _Answer(error=exc)
        self._metrics.batch(item.rows)
        return _Answer(outputs, item.rows)
