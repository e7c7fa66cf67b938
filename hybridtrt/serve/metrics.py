"""Per-model serving metrics, exported with Ray Serve's own through its Prometheus endpoint."""

from __future__ import annotations

__all__ = ["ServeMetrics"]

_ROWS = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
_MILLISECONDS = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
                 10000.0]


class ServeMetrics:
    """Request count (by status code), rows per batch run and request latency of one model."""

    def __init__(self, model: str) -> None:
        from ray.serve import metrics

        self.model = model
        self._requests = metrics.Counter(
            "hybridtrt_requests", description="Infer requests answered, by HTTP status code.",
            tag_keys=("model", "code"))  # type: ignore[arg-type]  # (Ray types it Tuple[str])
        self._batch_rows = metrics.Histogram(
            "hybridtrt_batch_size", description="Rows of each batch run through the Predictor.",
            boundaries=_ROWS, tag_keys=("model",))
        self._latency = metrics.Histogram(
            "hybridtrt_request_latency_ms", description="Infer request latency in the replica.",
            boundaries=_MILLISECONDS, tag_keys=("model",))
        for metric in (self._requests, self._batch_rows, self._latency):
            metric.set_default_tags({"model": model})  # (once, not a dict per request)
        self._codes = {code: {"code": str(code)} for code in (200, 400, 404, 500, 503)}

    def request(self, code: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        tags = self._codes.get(code) or self._codes.setdefault(code, {"code": str(code)})
        self._requests.inc(tags=tags)
        self._latency.observe(seconds * 1000.0)

    def batch(self, rows: int) -> None:
        """Record one run of ``rows`` rows."""
        self._batch_rows.observe(rows)
