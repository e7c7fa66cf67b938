"""Runtime configuration: the Paddle-style ``Config`` builder and its frozen ``RuntimeSettings``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from hybridtrt.errors import ConfigError

__all__ = ["Config", "RuntimeSettings"]


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    """What a predictor runs with (a snapshot of ``Config`` taken by ``create_predictor``).

    Attributes:
        model_path: The hybrid model file.
        use_gpu: Run on a CUDA GPU (ONNX Runtime's CUDA provider) instead of the CPU.
        device_id: CUDA device ordinal.
        gpu_memory_mb: Memory ONNX Runtime's CUDA arena may take (0: no limit).
        require_tensorrt: Fail instead of running an engine through ONNX Runtime.
        isolate_engines: Run each fallback engine as its own segment, where TensorRT would.
        intra_op_threads: ONNX Runtime intra-op threads per session (0: ORT's default).
        share_cuda_stream: All GPU segments run on one CUDA stream of the predictor's (ORT's
            ``user_compute_stream``); False lets each ORT session use its own. A plan of one
            segment always uses ORT's own stream.
    """

    model_path: Path
    use_gpu: bool = False
    device_id: int = 0
    gpu_memory_mb: int = 0
    require_tensorrt: bool = False
    isolate_engines: bool = False
    intra_op_threads: int = 0
    share_cuda_stream: bool = True


class Config:
    """How to run a hybrid model, set step by step as in Paddle Inference.

    Example:
        >>> config = Config("model.hybrid.onnx")
        >>> config.disable_gpu()
        >>> config.isolate_engines(True)
        >>> config.settings().isolate_engines
        True
    """

    def __init__(self, model_path: str | os.PathLike[str]) -> None:
        self._settings = RuntimeSettings(Path(model_path))

    def _update(self, **changes: object) -> None:
        self._settings = dataclasses.replace(self._settings, **changes)  # type: ignore[arg-type]

    def enable_use_gpu(self, memory_pool_init_size_mb: int = 0, device_id: int = 0) -> None:
        """Run on CUDA device ``device_id``; ``memory_pool_init_size_mb`` caps ORT's arena (0: none)."""
        if int(device_id) < 0:
            raise ConfigError(f"device_id must be >= 0, got {device_id}")
        if int(memory_pool_init_size_mb) < 0:
            raise ConfigError(f"memory_pool_init_size_mb must be >= 0, got {memory_pool_init_size_mb}")
        self._update(use_gpu=True, device_id=int(device_id),
                     gpu_memory_mb=int(memory_pool_init_size_mb))

    def disable_gpu(self) -> None:
        """Run on the CPU."""
        self._update(use_gpu=False)

    def use_gpu(self) -> bool:
        return self._settings.use_gpu

    def gpu_device_id(self) -> int:
        return self._settings.device_id

    def require_tensorrt(self, required: bool = True) -> None:
        """Make an engine that cannot run in TensorRT an error instead of an ORT fallback."""
        self._update(require_tensorrt=bool(required))

    def isolate_engines(self, isolated: bool = True) -> None:
        """Run fallback engines as their own ORT segments (default: inline them into ORT)."""
        self._update(isolate_engines=bool(isolated))

    def share_cuda_stream(self, shared: bool = True) -> None:
        """Run every GPU segment on one stream of the predictor's (default) or on ORT's own."""
        self._update(share_cuda_stream=bool(shared))

    def set_cpu_math_library_num_threads(self, threads: int) -> None:
        """ONNX Runtime intra-op threads per session (0: its default)."""
        if int(threads) < 0:
            raise ConfigError(f"threads must be >= 0, got {threads}")
        self._update(intra_op_threads=int(threads))

    def model_path(self) -> Path:
        return self._settings.model_path

    def settings(self) -> RuntimeSettings:
        """The frozen snapshot a predictor is created from."""
        return self._settings
