"""Where values live between segments: host numpy arrays (CPU) or CUDA buffers on one stream."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from hybridtrt.errors import ConfigError, InputError
from hybridtrt.runtime.bound import BOUND_SIGNATURES, BoundRuns
from hybridtrt.runtime.graphs import CAPTURE_LOCK
from hybridtrt.runtime.interop import DeviceTensor, cuda_view, dtype_of
from hybridtrt.runtime.run_options import graph_run_options, unsynced_run_options

__all__ = ["CpuDevice", "CudaDevice", "Device", "DeviceTensor", "dtype_of", "open_device"]


class Device(Protocol):
    """Runs ORT sessions on values of one kind and moves values to and from the host."""

    name: str
    graphs: bool  # some sessions capture CUDA graphs
    may_skip_sync: bool  # runs may skip ORT's stream sync (``graphs.unsynced_safe``)

    def providers(self, graph: bool = False) -> list[Any]: ...

    def limit_graphs(self, session: Any) -> None:
        """Let a graph session hold one CUDA graph only (``graphs.single_graph``)."""
        ...

    def accept(self, name: str, value: Any) -> Any:
        """A caller's input as a value this device runs on (no copy when already there; a host
        array on the GPU is copied as it is bound, or staged by ``staged`` when several
        segments read it)."""
        ...

    def run(self, session: Any, inputs: Mapping[str, Any], outputs: Sequence[str],
            host_outputs: Collection[str] = (), graph: bool = False, sync: bool = True,
            host_values: Collection[str] = ()) -> list[Any]:
        """Run a session; ``host_outputs`` are only read by the caller and may land on the host.

        ``graph``: the session was created to capture CUDA graphs (``providers(graph=True)``).
        ``sync=False``: the run may end without waiting for its work (``graphs.unsynced_safe``);
        a later run on the stream, or reading a value on the host, waits for it.
        ``host_values``: outputs that ORT writes in host memory and later segments read from
        there (``placement.kept_on_host``).
        """
        ...

    def to_host(self, value: Any) -> np.ndarray: ...

    def count_copies(self, count: int) -> None:
        """Count host<->device copies made without ``accept`` or ``to_host``."""
        ...

    def shape_of(self, value: Any) -> tuple[int, ...]: ...


class CpuDevice:
    """Values are numpy arrays; sessions use ONNX Runtime's CPU provider."""

    name = "cpu"
    graphs = False
    may_skip_sync = False

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads

    def providers(self, graph: bool = False) -> list[Any]:
        return ["CPUExecutionProvider"]

    def limit_graphs(self, session: Any) -> None:
        """No CUDA graphs on the host."""

    def accept(self, name: str, value: Any) -> Any:
        if type(value) is np.ndarray:
            return value  # the usual case, first (each step costs more right after a run)
        if hasattr(value, "__cuda_array_interface__") and not isinstance(value, np.ndarray):
            raise InputError(f"input '{name}' is on a GPU but the predictor runs on the CPU; "
                             "call config.enable_use_gpu() or pass a numpy array")
        if value is None or isinstance(value, (list, tuple)):
            return value  # sequence and optional inputs go to ONNX Runtime as they are
        return np.asarray(value)

    def run(self, session: Any, inputs: Mapping[str, Any], outputs: Sequence[str],
            host_outputs: Collection[str] = (), graph: bool = False, sync: bool = True,
            host_values: Collection[str] = ()) -> list[Any]:
        return list(session.run(list(outputs), dict(inputs)))

    def count_copies(self, count: int) -> None:
        """Values on the host make no copies to count."""

    def to_host(self, value: Any) -> Any:
        if value is None or isinstance(value, (list, tuple)):
            return value  # sequence and optional outputs come back as ONNX Runtime gives them
        return np.asarray(value)

    def shape_of(self, value: Any) -> tuple[int, ...]:
        return tuple(np.shape(value)) if isinstance(value, np.ndarray) else ()

    # Engine memory (engines that run on the host: TensorRT fakes in tests) -------------------

    stream = 0

    def pointer(self, name: str, value: Any) -> tuple[int, Any]:
        array = np.ascontiguousarray(value)
        return int(array.ctypes.data), array

    host_pointer = pointer

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[Any, int]:
        array = np.empty(shape, dtype)
        return array, int(array.ctypes.data)

    def view(self, owner: Any, pointer: int, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        count = int(np.prod(shape, dtype=np.int64))
        if owner is None or count == 0:
            return np.empty(shape, dtype)
        return np.frombuffer(owner, dtype=dtype, count=count).reshape(shape)

    def after_engine(self) -> None:
        return None


class CudaDevice:
    """Values stay in CUDA memory; every session runs on one shared stream.

    Inputs that already live on the GPU (anything with ``__cuda_array_interface__``: cupy,
    torch, DeviceTensor) are bound by pointer, without a copy; host arrays are copied once into
    a reused staging buffer. Segment outputs stay in ORT's CUDA memory and are bound as the
    next segment's inputs; only ``to_host`` copies back.
    """

    name = "cuda"
    memory = "cuda"  # where ORT values live (tests run this class's logic on host memory)

    def __init__(self, device_id: int = 0, memory_mb: int = 0, share_stream: bool = True,
                 graphs: bool = False) -> None:
        self.device_id = device_id
        self.memory_mb = memory_mb
        self.share_stream = share_stream
        self.graphs = graphs  # some sessions capture CUDA graphs (Config.enable_cuda_graph)
        # CUDA graphs cannot be captured on a blocking stream (error 906 on an H100).
        self.stream = _create_stream(device_id, blocking=not graphs)
        self.host_copies = 0  # host<->device copies made here (inputs in, outputs out)
        self.foreign_outputs = 0  # segment outputs ORT left outside this GPU (should stay 0)
        self.bound_runs = 0  # segment runs into buffers bound on an earlier run
        self.unsynced_runs = 0  # segment runs that skipped ORT's stream sync at their end
        self._trace: list[tuple[Any, Any, Any]] | None = None
        # reused device buffers for host inputs, by (name, shape, type): a few shapes per name
        self._staging: dict[tuple[str, tuple[int, ...], str], Any] = {}
        self._bindings: dict[int, Any] = {}  # one IOBinding per session, rebound each run
        self._tensor_names: dict[int, frozenset[str]] = {}  # tensor-typed inputs per session
        self._graph_options = graph_run_options(BOUND_SIGNATURES) if graphs else []
        # Runs may skip ORT's stream sync only where one stream orders every segment; with
        # graphs the stream is non-blocking (host copies on the legacy stream would not wait).
        self._unsynced = unsynced_run_options() if share_stream and not graphs else None
        self.may_skip_sync = self._unsynced is not None
        self._bound = BoundRuns(self.memory, device_id, graph_options=self._graph_options)

    def providers(self, graph: bool = False) -> list[Any]:
        options: dict[str, str] = {"device_id": str(self.device_id)}
        if graph:
            options["enable_cuda_graph"] = "1"
        if self.share_stream:
            options["user_compute_stream"] = str(self.stream)
        if self.memory_mb:
            options["gpu_mem_limit"] = str(self.memory_mb << 20)
        return [("CUDAExecutionProvider", options)]

    def accept(self, name: str, value: Any) -> Any:
        if type(value) is np.ndarray and value.dtype.kind not in "OUS" and value.flags.c_contiguous:
            self.host_copies += 1  # the usual case, first (copied as below)
            return value
        if hasattr(value, "__cuda_array_interface__"):
            if not self.share_stream or self.graphs:
                self._synchronize_device()  # these streams are not ordered with the caller's
            return value
        if value is None or isinstance(value, (list, tuple)):
            raise InputError(f"input '{name}' is a sequence or optional value; on the GPU the "
                             "predictor takes tensors only (run it on the CPU)")
        if np.asarray(value).dtype.kind in "OUS":
            raise InputError(f"input '{name}' holds strings, which cannot live on a GPU; run "
                             "this model on the CPU")
        self.host_copies += 1
        # (copied as it is bound, by ORT itself on a host-in, host-out run, or staged)
        return np.asarray(value, order="C")  # (ascontiguousarray would make a scalar shape (1,))

    def _stage(self, name: str, array: np.ndarray) -> Any:
        """``array`` copied into the reused device buffer of tensor ``name`` for its shape."""
        import onnxruntime as ort

        key = (name, array.shape, array.dtype.str)
        staged = self._staging.get(key)
        if staged is not None:
            staged.update_inplace(array)  # no new allocation (a cudaFree would sync the device)
            return staged
        # A buffer per shape, so that alternating shapes keep their bindings (and graphs): the
        # first shapes keep theirs, as bound signatures do (``bound``); later ones share one.
        mine = [k for k in self._staging if k[0] == name]
        if len(mine) > BOUND_SIGNATURES:
            del self._staging[mine[-1]]
        # (allocated, then filled: on host memory, ortvalue_from_numpy would wrap the caller's array)
        staged = ort.OrtValue.ortvalue_from_shape_and_type(list(array.shape), array.dtype,
                                                           self.memory, self.device_id)
        staged.update_inplace(array)
        self._staging[key] = staged
        return staged

    def run(self, session: Any, inputs: Mapping[str, Any], outputs: Sequence[str],
            host_outputs: Collection[str] = (), graph: bool = False, sync: bool = True,
            host_values: Collection[str] = ()) -> list[Any]:
        options = self._graph_options[0] if graph else None  # (graph: no capture)
        if not sync and not graph and not host_outputs and self._unsynced is not None:
            options = self._unsynced  # the next segment's kernels queue behind this one's
        if not graph and len(host_outputs) == len(outputs) and all(  # (a subset of outputs)
                isinstance(v, np.ndarray) for v in inputs.values()):
            # Host in, host out: exactly what a plain ORT run does, with nothing to hand over.
            # (A graph session goes the bound way instead, to be captured.)
            self.end_trace()
            self.host_copies += len(outputs)  # ORT copies each output back within the run
            return list(session.run(list(outputs), dict(inputs)))
        tensors = self._tensor_inputs(session)
        if tensors.issuperset(inputs):
            # Host arrays go to reused device buffers: a bound run need not rebind them.
            inputs = {n: self.staged(n, v) for n, v in inputs.items()}
            key = self._bound.signature(inputs)
        else:
            key = None
        if graph:
            with CAPTURE_LOCK:  # ORT captures in CUDA's global mode: one capture at a time
                bound = self._bound.run(session, key, inputs, self._bind_input, graph, self._fixed)
        else:
            bound = self._bound.run(session, key, inputs, self._bind_input, options=options)
        unsynced = options is not None and options is self._unsynced
        if bound is not None:
            self.bound_runs += 1
            self.unsynced_runs += unsynced
            if self._trace is not None:
                self._trace.append((session, bound.binding, bound.options))
            return list(bound.outputs)  # on the device; ``to_host`` counts their copies
        self.end_trace()  # a run with fresh bindings cannot be replayed
        if graph:
            self._bound.no_capture(session)
        values = self._run_fresh(session, inputs, outputs, host_outputs, tensors, options,
                                 host_values)
        self.unsynced_runs += unsynced
        self._bound.learn(session, key, outputs, values, host_values)
        return values

    # Replays: a whole run made of bound runs, repeated without the predictor's bookkeeping ---

    def begin_trace(self) -> None:
        """Record the bindings of the segment runs until ``end_trace``."""
        self._trace = []

    def end_trace(self) -> list[tuple[Any, Any, Any]] | None:
        """The (session, binding, run options) of each segment run since ``begin_trace``; None
        when one of them bound afresh (or ran host in, host out), or no trace was begun."""
        trace, self._trace = self._trace, None
        return trace

    def staged(self, name: str, value: Any) -> Any:
        """A model input as a bound run reads it: host arrays in their reused device buffer."""
        return self._stage(name, value) if isinstance(value, np.ndarray) else value

    def limit_graphs(self, session: Any) -> None:
        """Let a graph session hold one CUDA graph only (``graphs.single_graph``)."""
        self._bound.limit_graphs(session)

    def owns(self, value: Any) -> bool:
        """Whether ``value`` lives in a bound output buffer (the next run overwrites it)."""
        return self._bound.owns(value)

    def _fixed(self, value: Any) -> bool:
        """Whether ``value`` is a buffer of the predictor's that stays where it is."""
        return self._bound.owns(value) or any(value is v for v in self._staging.values())

    def binding_generation(self) -> int:
        """Grows whenever a bound binding changes (replays recorded before are stale)."""
        return self._bound.generation

    def _run_fresh(self, session: Any, inputs: Mapping[str, Any], outputs: Sequence[str],
                   host_outputs: Collection[str], tensors: frozenset[str],
                   options: Any = None, host_values: Collection[str] = ()) -> list[Any]:
        """A run with every input and output bound anew (ORT allocates the outputs)."""
        import onnxruntime as ort

        binding = self._bindings.get(id(session))
        if binding is None:
            binding = self._bindings[id(session)] = session.io_binding()
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        for name, value in inputs.items():
            if isinstance(value, np.ndarray) and name not in tensors:
                # optional-typed inputs take an OrtValue, not a raw host buffer
                value = ort.OrtValue.ortvalue_from_numpy(value, self.memory, self.device_id)
            self._bind_input(binding, name, value)
        for name in outputs:
            if name in host_outputs:
                self.host_copies += 1
                binding.bind_output(name, "cpu")  # ORT copies it back within the run
            elif name in host_values:
                binding.bind_output(name, "cpu")  # where ORT writes it
            else:
                binding.bind_output(name, self.memory, self.device_id)
        # No RunOptions but "no capture" (graph sessions) and "no sync" (``unsynced_safe``):
        # with any that lack "gpu_graph_id", onnxruntime 1.31's wrapper pays a C++ exception,
        # about 40 us per run (80 measured on an H100 for "no sync" alone).
        session.run_with_iobinding(binding, options)
        values = list(binding.get_outputs())
        self.foreign_outputs += sum(1 for n, v in zip(outputs, values)
                                    if n not in host_outputs and n not in host_values
                                    and v.device_name().lower() != self.memory)
        return values

    def _bind_input(self, binding: Any, name: str, value: Any) -> None:
        import onnxruntime as ort

        if isinstance(value, ort.OrtValue):
            binding.bind_ortvalue_input(name, value)
        elif isinstance(value, np.ndarray):
            binding.bind_cpu_input(name, value)  # ORT copies it to the device as it binds
        else:
            shape, dtype, ptr = cuda_view(value)
            binding.bind_input(name, self.memory, self.device_id, dtype, list(shape), ptr)

    def _tensor_inputs(self, session: Any) -> frozenset[str]:
        found = self._tensor_names.get(id(session))
        if found is None:
            found = frozenset(i.name for i in session.get_inputs() if i.type.startswith("tensor("))
            self._tensor_names[id(session)] = found
        return found

    def _synchronize_device(self) -> None:
        from cuda.bindings import runtime as cudart

        (err,) = cudart.cudaDeviceSynchronize()
        if int(err) != 0:
            raise RuntimeError(f"cudaDeviceSynchronize failed: {err}")

    def synchronize(self) -> None:
        from cuda.bindings import runtime as cudart

        (err,) = cudart.cudaStreamSynchronize(self.stream)
        if int(err) != 0:
            raise RuntimeError(f"cudaStreamSynchronize failed: {err}")

    def count_copies(self, count: int) -> None:
        """Count host<->device copies made without ``accept`` or ``to_host``: the predictor's
        usual call on arrays that passed ``accept`` before (``executors``: the fast paths)."""
        self.host_copies += count

    def to_host(self, value: Any) -> np.ndarray:
        if isinstance(value, np.ndarray):
            return value
        if callable(getattr(value, "device_name", None)):  # an OrtValue
            if value.device_name().lower() == "cpu":  # copied back by ORT, or a host handover
                host = np.asarray(value.numpy())  # (a view of the value's memory)
                return host.copy() if self._bound.owns(value) else host  # (the next run rewrites it)
            if self.graphs:
                self.synchronize()
            # (else ORT's copy, a cudaMemcpy on the legacy default stream, waits for the work
            # queued before on the shared stream, a blocking one; with own streams every ORT
            # run waits for its stream before it returns, and engines wait in ``after_engine``)
            self.host_copies += 1
            return np.asarray(value.numpy())  # ORT's copy costs less than going through cupy
        self.synchronize()
        self.host_copies += 1
        import cupy

        shape, dtype, ptr = cuda_view(value)
        if 0 in shape:
            return np.empty(shape, dtype)  # nothing to copy (and no buffer to read)
        view = cupy.asarray(DeviceTensor(ptr, shape, np.dtype(dtype), value, self.device_id))
        return np.asarray(cupy.asnumpy(view))

    def to_device_array(self, value: Any) -> Any:
        """A device array of the caller's own: cupy when installed, else a DeviceTensor.

        Values the predictor produced are copied on the device: bound buffers are rewritten by
        the next run, and ONNX Runtime may reuse an output's memory on a session's next run (on
        its CPU provider it does). Only a caller's own device array handed back stays as it is.
        """
        if isinstance(value, np.ndarray) or (callable(getattr(value, "device_name", None))
                                             and value.device_name().lower() != self.memory):
            import onnxruntime as ort  # a model constant or input handed back: copy it over

            host = np.asarray(value if isinstance(value, np.ndarray) else value.numpy(), order="C")
            value = ort.OrtValue.ortvalue_from_numpy(host, self.memory, self.device_id)
        elif callable(getattr(value, "data_ptr", None)) or isinstance(value, DeviceTensor):
            value = self._device_copy(value)  # an ORT value, or an engine's output
        self.synchronize()
        shape, dtype, ptr = cuda_view(value)
        tensor = DeviceTensor(ptr, shape, np.dtype(dtype), value, self.device_id)
        try:
            import cupy
        except ImportError:
            return tensor
        return cupy.asarray(tensor)

    def _device_copy(self, value: Any) -> Any:
        """A new ORT CUDA value holding a copy of ``value`` (copied on the predictor's stream)."""
        from cuda.bindings import runtime as cudart

        shape, dtype, ptr = cuda_view(value)
        copy, target = self.allocate(shape, dtype)
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if size:
            (err,) = cudart.cudaMemcpyAsync(target, ptr, size,
                                            cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice,
                                            self.stream)
            if int(err) != 0:
                raise RuntimeError(f"cudaMemcpyAsync failed: {err}")
        return copy

    def shape_of(self, value: Any) -> tuple[int, ...]:
        if value is None or isinstance(value, (list, tuple)):
            return ()  # sequences and optionals have no tensor shape
        return tuple(value.shape()) if callable(getattr(value, "shape", None)) else tuple(value.shape)

    # Engine memory (TensorRT segments) -------------------------------------------------------

    def pointer(self, name: str, value: Any) -> tuple[int, Any]:
        """The device address of an input; host arrays are copied to the device first."""
        if isinstance(value, np.ndarray):
            import onnxruntime as ort

            if value.dtype.kind in "OUS":
                raise InputError(f"tensor '{name}' holds strings, which TensorRT cannot take")
            # (``accept`` counted this copy already: host arrays pass through it first)
            value = ort.OrtValue.ortvalue_from_numpy(np.asarray(value, order="C"), self.memory,
                                                     self.device_id)
        _, _, pointer = cuda_view(value)
        return pointer, value

    def host_pointer(self, name: str, value: Any) -> tuple[int, Any]:
        array = np.ascontiguousarray(self.to_host(value))
        return int(array.ctypes.data), array

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[Any, int]:
        """A new ORT CUDA value: the next ORT segment binds it without a copy."""
        import onnxruntime as ort

        value = ort.OrtValue.ortvalue_from_shape_and_type(list(shape), np.dtype(dtype), self.memory,
                                                          self.device_id)
        return value, int(value.data_ptr())

    def view(self, owner: Any, pointer: int, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return DeviceTensor(pointer, tuple(shape), np.dtype(dtype), owner, self.device_id)

    def after_engine(self) -> None:
        if not self.share_stream or self.graphs:
            # ORT sessions on their own streams read the engine's outputs; with graphs the
            # shared stream is non-blocking, so ORT's host copies (on the legacy stream) would
            # not wait for the engine, which may still read an upload about to be freed.
            self.synchronize()


def _create_stream(device_id: int, blocking: bool = True) -> int:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise ConfigError("running on the GPU needs cuda-python: pip install 'hybridtrt[gpu]'") from exc
    (err,) = cudart.cudaSetDevice(device_id)
    if int(err) != 0:
        raise ConfigError(f"cannot use CUDA device {device_id}: {err}")
    # A blocking stream: ordered with work the caller queued on the legacy default stream (cupy's
    # and torch's default), so device inputs are complete before segments read them. CUDA graph
    # capture needs a non-blocking one (``accept`` then synchronizes the device instead).
    if blocking:
        err, stream = cudart.cudaStreamCreate()
    else:
        err, stream = cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking)
    if int(err) != 0:
        raise ConfigError(f"cannot create a CUDA stream on device {device_id}: {err}")
    return int(stream) if hasattr(stream, "__int__") else int(stream.getPtr())


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
