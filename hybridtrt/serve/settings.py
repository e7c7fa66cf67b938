"""How a model is served: the settings every part of ``hybridtrt.serve`` reads."""

from __future__ import annotations

import dataclasses

from hybridtrt.errors import ConfigError

__all__ = ["ServeSettings"]


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """How a model is served.

    Attributes:
        name: The model's name in the URLs (``/v2/models/{name}``).
        replicas: Ray Serve replicas, each with its own Predictor.
        gpus_per_replica: GPUs Ray gives each replica (0: run on the CPU).
        max_batch_size: Most rows one batch run takes (the engines' profiles may allow fewer).
        batch_wait_ms: How long a replica waits for more requests to fill a batch.
        max_ongoing_requests: Requests a replica works on at once (batches are formed from them).
        max_queued_requests: Requests a replica holds waiting beyond those; past them it
            answers 503 with ``{"error": ...}`` (None: four times ``max_ongoing_requests``).
        concurrent_batches: Batches a replica runs at once, each on its own Predictor (the
            first and its clones, sharing the loaded model).
        batch_buckets: Row counts a batch run is padded up to (its last row repeated; the
            padded rows' outputs are dropped). Each bucket runs on Predictors of its own, warmed
            up at replica start where the input shapes are known, so that every ONNX Runtime
            session keeps one batch shape: ORT CUDA plans its convolutions again whenever a
            session's input shape changes (docs/SERVING.md). None: powers of two up to
            ``max_batch_size`` on a GPU, none on the CPU; ``()``: never pad.
    """

    name: str
    replicas: int = 1
    gpus_per_replica: float = 0.0
    max_batch_size: int = 8
    batch_wait_ms: float = 5.0
    max_ongoing_requests: int = 16
    max_queued_requests: int | None = None
    concurrent_batches: int = 1
    batch_buckets: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ConfigError(f"the model name must be non-empty and have no '/', got "
                              f"{self.name!r}")
        for field, low in (("replicas", 1), ("max_batch_size", 1), ("max_ongoing_requests", 1),
                           ("concurrent_batches", 1)):
            if getattr(self, field) < low:
                raise ConfigError(f"{field} must be >= {low}, got {getattr(self, field)}")
        if self.gpus_per_replica < 0 or self.batch_wait_ms < 0:
            raise ConfigError(f"gpus_per_replica and batch_wait_ms must be >= 0, got "
                              f"{self.gpus_per_replica} and {self.batch_wait_ms}")
        if self.max_queued_requests is not None and self.max_queued_requests < 0:
            raise ConfigError(f"max_queued_requests must be >= 0, got {self.max_queued_requests}")
        wrong = [b for b in self.batch_buckets or () if not 1 <= b <= self.max_batch_size]
        if wrong:
            raise ConfigError(f"batch_buckets must lie in 1..max_batch_size "
                              f"({self.max_batch_size}), got {list(self.batch_buckets or ())}")

    @property
    def buckets(self) -> tuple[int, ...]:
        """``batch_buckets``, the default resolved, in increasing order."""
        if self.batch_buckets is not None:
            return tuple(sorted(set(self.batch_buckets)))
        if self.gpus_per_replica <= 0 or self.max_batch_size == 1:
            return ()
        powers = [1 << k for k in range(self.max_batch_size.bit_length())]
        return tuple(sorted({*(p for p in powers if p <= self.max_batch_size),
                             self.max_batch_size}))

    @property
    def queue_limit(self) -> int:
        """``max_queued_requests``, the default resolved."""
        if self.max_queued_requests is None:
            return 4 * self.max_ongoing_requests
        return self.max_queued_requests
