"""TensorRT run calls: deserialize, refit a weight-stripped plan, and one execution context."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, SupportsFloat, SupportsInt

import numpy as np

from hybridtrt.trt import library
from hybridtrt.trt.api import TensorRTFailure, TrtContext
from hybridtrt.trt.tensorrt_logger import LOGGER, capture_errors, dims

if TYPE_CHECKING:
    import tensorrt as trt
else:
    trt = library.bound()

__all__ = ["TensorRTContext", "TensorRTEngine", "deserialize"]


# TensorRT's own ``nptype`` lives in its Python wrapper, not the bindings; this is the same table.
_NUMPY_TYPES = (
    (trt.DataType.FLOAT, "float32"), (trt.DataType.HALF, "float16"), (trt.DataType.INT8, "int8"),
    (trt.DataType.INT32, "int32"), (trt.DataType.INT64, "int64"), (trt.DataType.BOOL, "bool"),
    (trt.DataType.UINT8, "uint8"),
)


def _failure(what: str, logged: Sequence[str]) -> TensorRTFailure:
    return TensorRTFailure(f"{what}: {'; '.join(logged)}" if logged else what)


def deserialize(plan: bytes, refit_model: bytes | None) -> TensorRTEngine:
    """Deserialize ``plan``; refit it from ``refit_model`` (ONNX bytes) when given."""
    with capture_errors() as logged:
        runtime = trt.Runtime(LOGGER)
        engine = runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise _failure("TensorRT could not deserialize the engine", logged)
        if refit_model is not None:
            refitter = trt.Refitter(engine, LOGGER)
            onnx_refitter = trt.OnnxParserRefitter(refitter, LOGGER)
            if not onnx_refitter.refit_from_bytes(refit_model):
                errors = [onnx_refitter.get_error(k).desc() for k in range(onnx_refitter.num_errors)]
                raise _failure("TensorRT could not read the weights to refit", [*errors, *logged])
            if not refitter.refit_cuda_engine():
                missing = refitter.get_missing_weights()
                raise _failure(f"TensorRT could not refit the engine (missing weights: "
                               f"{missing[:5]})", logged)
    return TensorRTEngine(runtime, engine)


class TensorRTEngine:
    """A deserialized engine (see ``hybridtrt.trt.api.TrtEngine``)."""

    def __init__(self, runtime: trt.Runtime, engine: trt.ICudaEngine) -> None:
        self._runtime = runtime  # the runtime must outlive its engines
        self._engine = engine
        names = [engine.get_tensor_name(k) for k in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.inputs = tuple(n for n in names if is_input[n])
        self.outputs = tuple(n for n in names if not is_input[n])
        self.host_inputs = frozenset(
            n for n in self.inputs if engine.get_tensor_location(n) == trt.TensorLocation.HOST)

    def dtype(self, name: str) -> np.dtype:
        found = self._engine.get_tensor_dtype(name)
        for trt_type, numpy_type in _NUMPY_TYPES:
            if found == trt_type:
                return np.dtype(numpy_type)
        raise TensorRTFailure(f"tensor '{name}' has TensorRT type {found}, which hybridtrt cannot "
                              "hand to ONNX Runtime")

    def create_context(self) -> TrtContext:
        with capture_errors() as logged:
            context = self._engine.create_execution_context()
            if context is None:
                raise _failure("TensorRT could not create an execution context", logged)
        return TensorRTContext(self, context)


class _OutputAllocator(trt.IOutputAllocator):
    """Hands TensorRT memory for a data-dependent output and remembers its final shape."""

    def __init__(self, allocate: Callable[[int], int]) -> None:
        trt.IOutputAllocator.__init__(self)
        self._allocate = allocate
        self.pointer = 0
        self.size = 0
        self.shape: tuple[int, ...] = ()

    def reset(self) -> None:
        self.pointer, self.size, self.shape = 0, 0, ()  # a fresh buffer for each run's value

    def reallocate_output_async(self, tensor_name: str, memory: SupportsInt, size: SupportsInt,
                                alignment: SupportsInt, stream: SupportsInt) -> int:
        if int(size) > self.size or not self.pointer:
            self.pointer = int(self._allocate(max(int(size), 1)))
            self.size = int(size)
        return self.pointer

    def notify_shape(self, tensor_name: str, shape: trt.Dims) -> None:
        self.shape = dims(shape)


class _Profiler(trt.IProfiler):
    def __init__(self, report: Callable[[str, float], None]) -> None:
        trt.IProfiler.__init__(self)
        self._report = report

    def report_layer_time(self, layer_name: str, ms: SupportsFloat) -> None:
        self._report(layer_name, float(ms))


class TensorRTContext:
    """One execution context; every TensorRT return value is checked and the tensor named."""

    def __init__(self, engine: TensorRTEngine, context: trt.IExecutionContext) -> None:
        self._engine = engine  # the engine must outlive its contexts
        self._context = context
        self._allocators: dict[str, _OutputAllocator] = {}
        self._profiler: _Profiler | None = None

    def set_profile(self, index: int, stream: int) -> None:
        with capture_errors() as logged:
            if not self._context.set_optimization_profile_async(index, stream):
                raise _failure(f"TensorRT refused optimization profile {index}", logged)

    def set_input_shape(self, name: str, shape: Sequence[int]) -> None:
        with capture_errors() as logged:
            if not self._context.set_input_shape(name, [int(d) for d in shape]):
                raise _failure(f"TensorRT refused shape {list(shape)} for input '{name}'", logged)

    def output_shape(self, name: str) -> tuple[int, ...]:
        return dims(self._context.get_tensor_shape(name))

    def set_address(self, name: str, pointer: int) -> None:
        with capture_errors() as logged:
            if not self._context.set_tensor_address(name, pointer):
                raise _failure(f"TensorRT refused the address of tensor '{name}'", logged)

    def use_output_allocator(self, name: str, allocate: Callable[[int], int]) -> None:
        allocator = self._allocators.get(name)
        if allocator is None:
            allocator = self._allocators[name] = _OutputAllocator(allocate)
            with capture_errors() as logged:
                if not self._context.set_output_allocator(name, allocator):
                    raise _failure(f"TensorRT refused an output allocator for '{name}'", logged)
        allocator.reset()

    def allocated_shape(self, name: str) -> tuple[int, ...]:
        return self._allocators[name].shape

    def execute(self, stream: int) -> None:
        with capture_errors() as logged:
            if not self._context.execute_async_v3(stream):
                raise _failure("TensorRT could not run the engine", logged)

    def set_profiler(self, report: Callable[[str, float], None] | None) -> None:
        self._profiler = _Profiler(report) if report is not None else None
        self._context.profiler = self._profiler  # type: ignore[assignment]
