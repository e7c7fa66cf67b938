"""The Ray Serve replica: one Predictor, dynamic batching, and the Open Inference Protocol's
REST routes as thin handlers over them."""

import asyncio
import dataclasses
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
from hybridtrt.serve.batching import Item, concatenate, group, layout, split
from hybridtrt.serve.settings import ServeSettings
from hybridtrt.serve.metrics import ServeMetrics
from hybridtrt.serve.protocol import (HEADER_LENGTH, encode_response, model_metadata,
                                      parse_request, tensor_spec)

__all__ = ["BATCH_HEADER", "ModelServer"]

BATCH_HEADER = "Hybridtrt-Batch-Size"  # rows of the batch run that answered the request

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
        # The Predictor and its clones, one per batch run at a time (they share the model).
        self._idle: queue.SimpleQueue[Predictor] = queue.SimpleQueue()
        self._idle.put(self._predictor)
        for _ in range(settings.concurrent_batches - 1):
            self._idle.put(self._predictor.clone())
        self._batched = serve.batch(max_batch_size=settings.max_batch_size,
                                    batch_wait_timeout_s=settings.batch_wait_ms / 1000.0,
                                    max_concurrent_batches=settings.concurrent_batches,
                                    batch_size_fn=_weight)(self._run_batch)

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
        if head is None:
            return Response(content, media_type="application/json", headers=headers)
        headers[HEADER_LENGTH] = str(head)
        return Response(content, media_type="application/octet-stream", headers=headers)

    async def _run_batch(self, batch: list[_Queued]) -> list[_Answer]:
        """What ``serve.batch`` calls (``self._batched``) with the requests it gathered."""
        return await asyncio.to_thread(self._run_all, [q.item for q in batch])

    def _run_all(self, items: Sequence[Item]) -> list[_Answer]:
        """Every item's answer: items that may run as one are concatenated (``group``)."""
        predictor = self._idle.get()
        try:
            answers: list[_Answer] = [_Answer()] * len(items)
            for run in group(self._layout, items, self.settings.max_batch_size):
                together = self._run_together(predictor, [items[k] for k in run])
                for index, answer in zip(run, together):
                    answers[index] = answer
            return answers
        finally:
            self._idle.put(predictor)

    def _run_together(self, predictor: Predictor, items: Sequence[Item]) -> list[_Answer]:
        if len(items) > 1:
            rows = [i.rows for i in items]
            try:
                merged = predictor.run_dict(concatenate(items), items[0].outputs)
            except HybridTRTError:
                merged = None  # one of them is wrong, or the merged shape does not fit: alone
            parts = split(merged, rows) if merged is not None else None
            if parts is not None:
                self._metrics.batch(sum(rows))
                return [_Answer(p, sum(rows)) for p in parts]
        return [self._run_alone(predictor, i) for i in items]

    def _run_alone(self, predictor: Predictor, item: Item) -> _Answer:
        try:
            outputs = predictor.run_dict(item.feeds, item.outputs)
        except HybridTRTError as exc:
            return _Answer(error=exc)
        self._metrics.batch(item.rows)
        return _Answer(outputs, item.rows)
