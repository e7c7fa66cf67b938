"""The real ``TrtBackend``: the library's version, the GPU query, and the build and run calls
of ``tensorrt_build`` / ``tensorrt_run``, for whichever library ``hybridtrt.trt.library`` bound."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hybridtrt.trt import library, rtx
from hybridtrt.trt.api import (BuildOutput, BuildSpec, BuildTarget, GpuInfo, ParserVerdict,
                               TensorRTFailure, TrtEngine)
from hybridtrt.trt.tensorrt_build import build, parse_support
from hybridtrt.trt.tensorrt_run import deserialize

if TYPE_CHECKING:
    import tensorrt as trt
else:
    trt = library.bound()

__all__ = ["TensorRTBackend"]


def _gpu_info(device_id: int) -> GpuInfo:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise TensorRTFailure("cuda-python is not installed, and hybridtrt asks it which GPU "
                              "engines are built for (pip install 'hybridtrt[gpu]' or "
                              "'cuda-python>=12.6.2')") from exc
    err, props = cudart.cudaGetDeviceProperties(device_id)
    if int(err) != 0:
        raise TensorRTFailure(f"cannot query CUDA device {device_id}: {err}")
    name = props.name.decode(errors="replace").rstrip("\x00") if isinstance(props.name, bytes) else str(props.name)
    return GpuInfo(name, f"{props.major}.{props.minor}")


class TensorRTBackend:
    """TensorRT as hybridtrt uses it (see ``hybridtrt.trt.api.TrtBackend``)."""

    def __init__(self) -> None:
        self.library = library.bound_name()
        self.version = str(getattr(trt, "__version__", "unknown"))
        self._gpus: dict[int, GpuInfo] = {}
        self._label = "TensorRT-RTX" if self.library == library.RTX else "TensorRT"

    def unusable_reason(self, device: str, device_id: int) -> str:
        if device != "cuda":
            return f"{self._label} needs a GPU; the predictor runs on the CPU"
        try:
            gpu = self.gpu(device_id)
        except TensorRTFailure as exc:
            return f"{self._label} cannot use CUDA device {device_id}: {exc}"
        if self.library == library.RTX and not rtx.runs_on(gpu.compute_capability):
            return (f"TensorRT-RTX runs on GPUs of compute capability "
                    f"{', '.join(rtx.DEFAULT_TARGETS)}; CUDA device {device_id} ({gpu.name}) has "
                    f"{gpu.compute_capability}")
        return ""

    def build_unusable_reason(self, device_id: int) -> str:
        if self.library == library.RTX:
            return ""  # TensorRT-RTX builds ahead of time, without a GPU
        return self.unusable_reason("cuda", device_id)

    def build_target(self, device_id: int, compute_capabilities: Sequence[str]) -> BuildTarget:
        if self.library != library.RTX:
            return BuildTarget(self.gpu(device_id))
        try:
            gpu: GpuInfo | None = self.gpu(device_id)
        except TensorRTFailure:
            gpu = None
        return rtx.target(compute_capabilities, gpu)

    def gpu(self, device_id: int) -> GpuInfo:
        found = self._gpus.get(device_id)
        if found is None:
            found = self._gpus[device_id] = _gpu_info(device_id)
        return found

    def parse_support(self, model: bytes, path: str | None = None) -> ParserVerdict:
        return parse_support(model, path)

    def build(self, model: bytes, spec: BuildSpec, progress: Callable[[str], None],
              path: str | None = None) -> BuildOutput:
        return build(model, spec, progress, path)

    def deserialize(self, plan: bytes, refit_model: bytes | None) -> TrtEngine:
        return deserialize(plan, refit_model)
