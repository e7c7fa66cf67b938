"""The GPU device: values stay in CUDA memory, every session runs on one shared stream, and each
segment run takes the cheapest of its ORT run strategies (host in and out, bound, fresh)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

from hybridtrt.errors import InputError
from hybridtrt.runtime.devices.bound import BOUND_SIGNATURES, BoundRuns
from hybridtrt.runtime.devices.captures import CAPTURE_FAILED, Captures
from hybridtrt.runtime.devices.counters import Counters, RunStats
from hybridtrt.runtime.devices.fresh import FreshRuns
from hybridtrt.runtime.devices.interop import (DeviceTensor, caller_array, caller_copy,
                                               cuda_to_host, cuda_view, is_ort_value)
from hybridtrt.runtime.devices.run_options import graph_run_options, unsynced_run_options
from hybridtrt.runtime.devices.staging import Staging
from hybridtrt.runtime.devices.stream import CudaStream, Stream
from hybridtrt.runtime.graphs import CAPTURE_LOCK
from hybridtrt.runtime.signatures import LRU

__all__ = ["CudaDevice", "Trace"]

_LEGACY = 1  # ``__cuda_array_interface__``'s name for the legacy default stream
VIEWS = 64  # device arrays over predictor values kept for ``device_view`` to hand out again

Trace = list[tuple[Any, Any, Any]]  # (session, binding, run options) of each segment run


class CudaDevice:
    """Values stay in CUDA memory; every session runs on one shared stream.

    Inputs that already live on the GPU (anything with ``__cuda_array_interface__``: cupy,
    torch, DeviceTensor) are bound by pointer, without a copy (with CUDA graphs, copied on the
    device into a reused staging buffer, which the captured graph reads); host arrays are
    copied once into a reused staging buffer. Segment outputs stay in ORT's CUDA memory and are bound as the
    next segment's inputs; only ``to_host`` copies back.

    Args:
        device_id: The GPU.
        memory_mb: ORT's memory limit per session (0: none).
        share_stream: Every session runs on the device's stream (else each on its own).
        graphs: Some sessions capture CUDA graphs (``Config.enable_cuda_graph``).
        stream: The stream to run on (default: a new one; tests give one over host memory).
    """

    name = "cuda"
    memory = "cuda"  # where ORT values live (tests run this class's logic on host memory)

    def __init__(self, device_id: int = 0, memory_mb: int = 0, share_stream: bool = True,
                 graphs: bool = False, stream: Stream | None = None) -> None:
        self.device_id = device_id
        self.memory_mb = memory_mb
        self.share_stream = share_stream
        self.graphs = graphs
        # CUDA graphs cannot be captured on a blocking stream (error 906 on an H100).
        self._stream = stream if stream is not None else CudaStream(device_id, blocking=not graphs)
        self.stream = self._stream.handle
        self._counters = Counters()
        self._trace: Trace | None = None
        self._views: LRU[int, tuple[Any, Any]] = LRU(VIEWS)  # ``device_view``'s, by value id
        self._views_generation = 0  # the binding generation they were made in
        self._staging = Staging(self.memory, device_id)
        self._fresh = FreshRuns(self.memory, device_id, self._counters)
        self._bound = BoundRuns(self.memory, device_id, counters=self._counters)
        self._captures = Captures(graph_run_options(BOUND_SIGNATURES) if graphs else [None],
                                  self._fixed, self._counters)
        # Runs may skip ORT's stream sync only where one stream orders every segment; with
        # graphs the stream is non-blocking (host copies on the legacy stream would not wait).
        self._unsynced = unsynced_run_options() if share_stream and not graphs else None
        self.may_skip_sync = self._unsynced is not None

    def providers(self, graph: bool = False) -> list[Any]:
        options: dict[str, str] = {"device_id": str(self.device_id)}
        if graph:
            options["enable_cuda_graph"] = "1"
        if self.share_stream:
            options["user_compute_stream"] = str(self.stream)
        if self.memory_mb:
            options["gpu_mem_limit"] = str(self.memory_mb << 20)
        return [("CUDAExecutionProvider", options)]

    def stats(self) -> RunStats:
        return self._counters.stats()

    def accept(self, name: str, value: Any) -> Any:
        if type(value) is np.ndarray and value.dtype.kind not in "OUS" and value.flags.c_contiguous:
            self._counters.host_copies += 1  # the usual case, first (copied as below)
            return value
        if hasattr(value, "__cuda_array_interface__"):
            self._after_caller(value.__cuda_array_interface__)
            if self.graphs:  # into the input's reused buffer: its runs replay the captured graph
                shape, dtype, pointer = cuda_view(value)
                self._counters.device_copies += 1
                staged = self._staging.stage_device(name, shape, dtype, pointer, self._stream.copy)
                if not self.share_stream:
                    self._stream.synchronize()  # ORT's own stream does not follow the copy
                return staged
            return value
        if value is None or isinstance(value, (list, tuple)):
            raise InputError(f"input '{name}' is a sequence or optional value; on the GPU the "
                             "predictor takes tensors only (run it on the CPU)")
        if np.asarray(value).dtype.kind in "OUS":
            raise InputError(f"input '{name}' holds strings, which cannot live on a GPU; run "
                             "this model on the CPU")
        self._counters.host_copies += 1
        # (copied as it is bound, by ORT itself on a host-in, host-out run, or staged)
        return np.asarray(value, order="C")  # (ascontiguousarray would make a scalar shape (1,))

    def _after_caller(self, interface: Mapping[str, Any]) -> None:
        """Order the runs after the work writing a caller's device array: on the device, after
        the stream its ``__cuda_array_interface__`` names (version 3; None: nothing to wait
        for); without one, the host waits for the whole device where the streams are not
        ordered with the caller's (own streams, or the non-blocking stream of CUDA graphs)."""
        if self.share_stream and "stream" in interface:
            stream = interface["stream"]
            if stream is not None and (self.graphs or int(stream) != _LEGACY):
                self._stream.wait_for(int(stream))  # (a blocking stream follows the legacy one)
            return
        if not self.share_stream or self.graphs:
            self._stream.synchronize_device()

    def staged(self, name: str, value: Any) -> Any:
        """A model input as a bound run reads it: host arrays in their reused device buffer."""
        return self._staging.stage(name, value) if isinstance(value, np.ndarray) else value

    def run(self, session: Any, inputs: Mapping[str, Any], outputs: Sequence[str],
            host_outputs: Collection[str] = (), graph: bool = False, sync: bool = True,
            host_values: Collection[str] = ()) -> list[Any]:
        options = self._captures.no_capture() if graph else None
        if not sync and not graph and not host_outputs and self._unsynced is not None:
            options = self._unsynced  # the next segment's kernels queue behind this one's
        if not graph and len(host_outputs) == len(outputs) and all(  # (a subset of outputs)
                isinstance(v, np.ndarray) for v in inputs.values()):
            # Host in, host out: exactly what a plain ORT run does, with nothing to hand over.
            # (A graph session goes the bound way instead, to be captured.)
            self.end_trace()
            self._counters.host_copies += len(outputs)  # ORT copies each output back within the run
            return list(session.run(list(outputs), dict(inputs)))
        key = None
        if self._fresh.tensor_inputs(session).issuperset(inputs):
            # Host arrays go to reused device buffers: a bound run need not rebind them.
            inputs = {n: self.staged(n, v) for n, v in inputs.items()}
            key = self._bound.signature(inputs)
        lock = CAPTURE_LOCK if graph else contextlib.nullcontext()
        with lock:  # ORT captures in CUDA's global mode: one capture at a time
            bound = self._bound.run(session, key, inputs, self._fresh.bind, options,
                                    self._captures.choose if graph else None)
        unsynced = options is not None and options is self._unsynced
        if bound is not None:
            self._counters.unsynced_runs += unsynced
            if self._trace is not None:
                self._trace.append((session, bound.binding, bound.options))
            return list(bound.outputs)  # on the device; ``to_host`` counts their copies
        self.end_trace()  # a run with fresh bindings cannot be replayed
        if graph:
            self._captures.ran_fresh(session)
        values = self._fresh.run(session, inputs, outputs, host_outputs, options, host_values)
        self._counters.unsynced_runs += unsynced
        if self._bound.learn(session, key, outputs, values, host_values):
            self._captures.end(session, CAPTURE_FAILED)
        return values

    # Replays: a whole run made of bound runs, repeated without the predictor's bookkeeping ---

    def begin_trace(self) -> None:
        """Record the bindings of the segment runs until ``end_trace``."""
        self._trace = []

    def end_trace(self) -> Trace | None:
        """The (session, binding, run options) of each segment run since ``begin_trace``; None
        when one of them bound afresh (or ran host in, host out), or no trace was begun."""
        trace, self._trace = self._trace, None
        return trace

    def limit_graphs(self, session: Any) -> None:
        """Let a graph session hold one CUDA graph only (``graphs.single_graph``)."""
        self._captures.limit_graphs(session)

    def graphs_ended(self, session: Any) -> str:
        return self._captures.ended(session)

    def owns(self, value: Any) -> bool:
        """Whether ``value`` lives in a bound output buffer (the next run overwrites it)."""
        return self._bound.owns(value)

    def _fixed(self, value: Any) -> bool:
        """Whether ``value`` is a buffer of the predictor's that stays where it is."""
        return self._bound.owns(value) or self._staging.holds(value)

    def binding_generation(self) -> int:
        """Grows whenever a bound binding changes (replays recorded before are stale)."""
        return self._bound.generation + self._captures.generation

    def synchronize(self) -> None:
        self._stream.synchronize()

    def count_copies(self, count: int) -> None:
        """Count host<->device copies made without ``accept`` or ``to_host``: the predictor's
        usual call on arrays that passed ``accept`` before (``executors``: the fast paths)."""
        self._counters.host_copies += count

    def to_host(self, value: Any) -> np.ndarray:
        if isinstance(value, np.ndarray):
            return value
        if is_ort_value(value):
            if value.device_name().lower() == "cpu":  # copied back by ORT, or a host handover
                host = np.asarray(value.numpy())  # (a view of the value's memory)
                return host.copy() if self._bound.owns(value) else host  # (the next run rewrites it)
            if self.graphs:
                self.synchronize()
            # (else ORT's copy, a cudaMemcpy on the legacy default stream, waits for the work
            # queued before on the shared stream, a blocking one; with own streams every ORT
            # run waits for its stream before it returns, and engines wait in ``after_engine``)
            self._counters.host_copies += 1
            return np.asarray(value.numpy())  # ORT's copy costs less than going through cupy
        self.synchronize()
        self._counters.host_copies += 1
        return cuda_to_host(value, self.device_id)

    def to_device_array(self, value: Any) -> Any:
        """A device array of the caller's own: cupy when installed, else a DeviceTensor.

        Values the predictor produced are copied on the device: bound buffers are rewritten by
        the next run, and ONNX Runtime may reuse an output's memory on a session's next run (on
        its CPU provider it does). Only a caller's own device array handed back stays as it is.
        """
        if isinstance(value, np.ndarray) or (is_ort_value(value)
                                             and value.device_name().lower() != self.memory):
            import onnxruntime as ort  # a model constant or input handed back: copy it over

            host = np.asarray(value if isinstance(value, np.ndarray) else value.numpy(), order="C")
            value = ort.OrtValue.ortvalue_from_numpy(host, self.memory, self.device_id)
        elif is_ort_value(value) or isinstance(value, DeviceTensor):
            shape, dtype, pointer = cuda_view(value)
            # With CUDA graphs every run ends with its stream done (its inputs read), so the
            # copy need only be ordered on the device; else the host waits, before and after.
            copied = (caller_copy(shape, dtype, pointer, self._stream.hold, self._stream.wait_for,
                                  self.device_id) if self.share_stream and self.graphs else
                      caller_copy(shape, dtype, pointer, _waiting(self.synchronize), None,
                                  self.device_id))
            if copied is not None:  # into cupy's pooled memory: no allocation through ORT
                return copied
            value = self._device_copy(value)  # an ORT value, or an engine's output
        self.synchronize()
        shape, dtype, ptr = cuda_view(value)
        return caller_array(DeviceTensor(ptr, shape, np.dtype(dtype), value, self.device_id))

    def device_view(self, value: Any) -> Any:
        """A device array over a value the predictor holds on the GPU, without a copy: the next
        run may rewrite it (IOBinding's outputs, as ORT's own). Anything else: ``to_device_array``."""
        if not (isinstance(value, DeviceTensor)
                or (is_ort_value(value) and value.device_name().lower() == self.memory)):
            return self.to_device_array(value)
        self.synchronize()  # (the caller reads it on a stream of its own)
        generation = self.binding_generation()
        if generation != self._views_generation:  # bindings changed: their buffers may be gone
            self._views.clear()
            self._views_generation = generation
        known = self._views.get(id(value))  # a bound buffer, handed out on every replay
        if known is not None:
            return known[1]
        shape, dtype, ptr = cuda_view(value)
        view = caller_array(DeviceTensor(ptr, shape, np.dtype(dtype), value, self.device_id))
        if self._bound.owns(value):  # (kept alive by its binding anyway: its id stays its own)
            self._views.put(id(value), (value, view))
        return view

    def _device_copy(self, value: Any) -> Any:
        """A new ORT CUDA value holding a copy of ``value`` (copied on the predictor's stream)."""
        shape, dtype, ptr = cuda_view(value)
        copy, target = self.allocate(shape, dtype)
        self._copy(target, ptr, shape, dtype)
        return copy

    def _copy(self, target: int, source: int, shape: tuple[int, ...], dtype: np.dtype) -> None:
        """Queue a device copy of a C-order ``shape`` x ``dtype`` array on the stream."""
        size = math.prod(shape) * np.dtype(dtype).itemsize  # (Python ints: no overflow)
        if size:
            self._stream.copy(target, source, size)

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


def _waiting(synchronize: Callable[[], None]) -> Callable[[int], None]:
    """``caller_copy``'s ``before`` where runs may end with work queued: the host waits."""
    return lambda stream: synchronize()
