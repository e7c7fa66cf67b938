"""Where a predictor's values live and how its ORT sessions run on them: the host (``cpu``) or
one GPU (``cuda``: its stream, staging buffers, fresh/bound/CUDA-graph runs, array interop)."""

from __future__ import annotations

from hybridtrt.errors import ConfigError
from hybridtrt.runtime.devices.base import Device
from hybridtrt.runtime.devices.counters import RunStats
from hybridtrt.runtime.devices.cpu import CpuDevice
from hybridtrt.runtime.devices.cuda import CudaDevice
from hybridtrt.runtime.devices.interop import DeviceTensor, dtype_of
from hybridtrt.runtime.devices.stream import Stream

__all__ = ["CpuDevice", "CudaDevice", "Device", "DeviceTensor", "RunStats", "Stream", "dtype_of",
           "open_device"]


def open_device(use_gpu: bool, device_id: int = 0, memory_mb: int = 0, threads: int = 0,
                share_stream: bool = True, graphs: bool = False) -> Device:
    """The device a predictor runs on (``ConfigError`` when the GPU cannot be used)."""
    if not use_gpu:
        return CpuDevice(threads)
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ConfigError("running needs ONNX Runtime: pip install 'hybridtrt[gpu]'") from exc
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ConfigError("the installed onnxruntime has no CUDA provider: install onnxruntime-gpu "
                          "(pip install 'hybridtrt[gpu]') or call config.disable_gpu()")
    return CudaDevice(device_id, memory_mb, share_stream, graphs)
