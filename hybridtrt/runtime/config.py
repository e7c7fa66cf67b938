"""Runtime configuration: the Paddle-style ``Config`` builder and its frozen ``RuntimeSettings``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from hybridtrt.errors import ConfigError
from hybridtrt.online.settings import OnlineTensorRT, PrecisionType, shape_table

__all__ = ["Config", "PrecisionType", "RuntimeSettings"]


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
        engine_cache_dir: Where engines built at load are cached (None: the default cache).
        build_engines: Build engines at load whose plan is missing or does not fit this
            TensorRT and GPU (when TensorRT is installed).
        allow_rebuild: Input shapes outside every profile of an engine rebuild it with a wider
            profile (cached) instead of failing.
        tensorrt_profiler: Called with ``(engine, layer, milliseconds)`` for every layer of
            every TensorRT run (None: no profiling).
        ort_profile_prefix: ONNX Runtime's profiler is on in every ORT segment, writing
            ``<prefix><segment>_<time>.json`` (None: off).
        cuda_graph: Capture the repeated runs of GPU segments as CUDA graphs (ORT's
            ``enable_cuda_graph``) where that is safe (see ``runtime.graphs``).
        tensorrt: Online TensorRT for a plain ONNX model (``enable_tensorrt_engine``; None: off).
    """

    model_path: Path
    use_gpu: bool = False
    device_id: int = 0
    gpu_memory_mb: int = 0
    require_tensorrt: bool = False
    isolate_engines: bool = False
    intra_op_threads: int = 0
    share_cuda_stream: bool = True
    engine_cache_dir: str | None = None
    build_engines: bool = True
    allow_rebuild: bool = False
    tensorrt_profiler: Callable[[str, str, float], None] | None = None
    ort_profile_prefix: str | None = None
    cuda_graph: bool = False
    tensorrt: OnlineTensorRT | None = None


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

    def enable_cuda_graph(self, enabled: bool = True) -> None:
        """Replay GPU segments as CUDA graphs from their third run with the same input shapes.

        Only segments ONNX Runtime can capture are graphed: every node on the CUDA provider,
        only ops that never read host values at run time. The rest run as usual. Needs the GPU.
        """
        self._update(cuda_graph=bool(enabled))

    def set_engine_cache_dir(self, directory: str | os.PathLike[str] | None) -> None:
        """Where engines built at load are cached (None: ``$HYBRIDTRT_CACHE_DIR`` or
        ``~/.cache/hybridtrt``)."""
        self._update(engine_cache_dir=None if directory is None else str(directory))

    def build_engines_at_load(self, build: bool = True) -> None:
        """Build missing or mismatched engines at load when TensorRT is installed (default on)."""
        self._update(build_engines=bool(build))

    def allow_rebuild(self, allowed: bool = True) -> None:
        """Rebuild an engine with a wider profile when inputs fall outside all its profiles."""
        self._update(allow_rebuild=bool(allowed))

    def enable_tensorrt_profiling(self, report: Callable[[str, str, float], None]) -> None:
        """Report ``(engine, layer, milliseconds)`` for every TensorRT layer run."""
        if not callable(report):
            raise ConfigError(f"enable_tensorrt_profiling needs a callable, got {report!r}")
        self._update(tensorrt_profiler=report)

    def enable_profile(self, prefix: str | os.PathLike[str] = "hybridtrt_profile_") -> None:
        """Turn on ONNX Runtime's profiler in every ORT segment (Paddle's ``enable_profile``).

        Each segment writes ``<prefix><segment name>_<time>.json`` (a Chrome trace) when
        ``predictor.end_profiling()`` is called; ``hybridtrt profile`` merges them.
        """
        self._update(ort_profile_prefix=str(prefix))

    def set_cpu_math_library_num_threads(self, threads: int) -> None:
        """ONNX Runtime intra-op threads per session (0: its default)."""
        if int(threads) < 0:
            raise ConfigError(f"threads must be >= 0, got {threads}")
        self._update(intra_op_threads=int(threads))

    def enable_tensorrt_engine(self, workspace_size: int = 1 << 30, max_batch_size: int = 1,
                               min_subgraph_size: int = 3,
                               precision_mode: PrecisionType = PrecisionType.Float32,
                               use_static: bool = False, use_calib_mode: bool = False,
                               calibration_runs: int | None = None) -> None:
        """Convert this plain ONNX model at load (Paddle 2.x's online TensorRT, docs/USAGE.md)."""
        previous = self._settings.tensorrt or OnlineTensorRT()
        self._update(tensorrt=dataclasses.replace(
            previous, workspace_size=workspace_size, max_batch_size=max_batch_size,
            min_subgraph_size=min_subgraph_size, precision=precision_mode,
            use_static=bool(use_static), use_calib_mode=bool(use_calib_mode),
            calibration_runs=calibration_runs or previous.calibration_runs))

    def _online(self, call: str, **changes: object) -> None:
        if self._settings.tensorrt is None:
            raise ConfigError(f"{call} configures online TensorRT: call "
                              "config.enable_tensorrt_engine(...) first")
        self._update(tensorrt=dataclasses.replace(self._settings.tensorrt, **changes))  # type: ignore[arg-type]

    def set_trt_dynamic_shape_info(self, min_input_shape: dict, max_input_shape: dict,
                                   opt_input_shape: dict) -> None:
        """Engine profiles as ``{input: shape}`` dicts, in Paddle's order: min, max, opt."""
        self._online("set_trt_dynamic_shape_info",
                     min_shapes=shape_table(min_input_shape, "min_input_shape"),
                     max_shapes=shape_table(max_input_shape, "max_input_shape"),
                     opt_shapes=shape_table(opt_input_shape, "opt_input_shape"))

    def exp_disable_tensorrt_ops(self, ops: list[str]) -> None:
        """Keep these op types or node names out of TensorRT."""
        self._online("exp_disable_tensorrt_ops",
                     disabled_ops=tuple([ops] if isinstance(ops, str) else (str(o) for o in ops)))

    def collect_shape_range_info(self, path: str | os.PathLike[str]) -> None:
        """Run in ONNX Runtime and record every input's shape range to ``path`` (JSON)."""
        self._online("collect_shape_range_info", collect_shape_path=str(path))

    def enable_tuned_tensorrt_dynamic_shape(self, path: str | os.PathLike[str],
                                            allow_build_at_runtime: bool = False) -> None:
        """Take the profiles from a ``collect_shape_range_info`` file; ``allow_build_at_runtime``
        widens them and rebuilds when a shape falls outside."""
        self._online("enable_tuned_tensorrt_dynamic_shape", tuned_shape_path=str(path),
                     allow_build_at_runtime=bool(allow_build_at_runtime))

    def model_path(self) -> Path:
        return self._settings.model_path

    def settings(self) -> RuntimeSettings:
        """The frozen snapshot a predictor is created from."""
        return self._settings
