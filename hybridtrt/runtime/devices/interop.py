"""Device arrays across libraries: ``__cuda_array_interface__`` views of ORT values, engine
outputs and callers' arrays (cupy, torch), their dtypes, and copies of them to the host."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hybridtrt.errors import InputError

__all__ = ["DeviceTensor", "caller_array", "caller_copy", "cuda_to_host", "cuda_view", "dtype_of",
           "is_ort_value"]


@dataclasses.dataclass(frozen=True)
class DeviceTensor:
    """A CUDA buffer with its shape and dtype; ``owner`` keeps the memory alive.

    It implements ``__cuda_array_interface__``, so ``cupy.asarray(t)`` and
    ``torch.as_tensor(t, device="cuda")`` view it without a copy.
    """

    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype
    owner: Any
    device_id: int = 0

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False),
                "version": 3, "strides": None, "stream": None}


def is_ort_value(value: Any) -> bool:
    """Whether ``value`` is an ORT value (``OrtValue``, or a stand-in with its methods)."""
    return callable(getattr(value, "device_name", None))


@functools.cache
def _cupy() -> Any | None:
    """cupy, or None when it is not installed (asked once: a failed import searches sys.path)."""
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def caller_array(tensor: DeviceTensor) -> Any:
    """A device array for the caller: cupy's view of ``tensor`` when cupy is installed."""
    cupy = _cupy()
    return tensor if cupy is None else cupy.asarray(tensor)


def caller_copy(shape: tuple[int, ...], dtype: np.dtype, pointer: int,
                before: Callable[[int], None], after: Callable[[int], None] | None,
                device_id: int = 0) -> Any | None:
    """A cupy array holding a copy of the C-order array at ``pointer``; None without cupy.

    The copy goes on cupy's current stream (the one its memory pool and the caller order their
    work on). ``before(stream)`` orders it after the work writing the source; ``after(stream)``
    orders the work that will rewrite the source after it (None: the host waits for the copy).
    """
    cupy = _cupy()
    if cupy is None:
        return None
    with cupy.cuda.Device(device_id):
        array = cupy.empty(shape, dtype)
        size = array.nbytes
        if size:
            stream = cupy.cuda.get_current_stream()
            before(stream.ptr)
            cupy.cuda.runtime.memcpyAsync(array.data.ptr, pointer, size,
                                          cupy.cuda.runtime.memcpyDeviceToDevice, stream.ptr)
            if after is None:
                stream.synchronize()
            else:
                after(stream.ptr)
    return array


def cuda_to_host(value: Any, device_id: int = 0) -> np.ndarray:
    """A host copy of a CUDA array (an engine's output, a caller's array), through cupy."""
    import cupy

    shape, dtype, ptr = cuda_view(value)
    if 0 in shape:
        return np.empty(shape, dtype)  # nothing to copy (and no buffer to read)
    view = cupy.asarray(DeviceTensor(ptr, shape, np.dtype(dtype), value, device_id))
    return np.asarray(cupy.asnumpy(view))


def cuda_view(value: Any) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and device address of an OrtValue or a ``__cuda_array_interface__`` array."""
    if hasattr(value, "data_ptr") and callable(getattr(value, "shape", None)):  # OrtValue
        return tuple(value.shape()), _ort_dtype(value.data_type()), int(value.data_ptr())
    interface = value.__cuda_array_interface__
    if interface.get("strides") not in (None, ()) and not _contiguous(interface):
        raise InputError("device inputs must be C-contiguous")
    return tuple(interface["shape"]), np.dtype(interface["typestr"]), int(interface["data"][0])


def _contiguous(interface: Mapping[str, Any]) -> bool:
    shape, strides = interface["shape"], interface["strides"]
    expected, size = [], np.dtype(interface["typestr"]).itemsize
    for dim in reversed(shape):
        expected.append(size)
        size *= dim
    return tuple(reversed(expected)) == tuple(strides)


_ORT_TYPES = {
    f"tensor({name})": np.dtype(dtype) for name, dtype in (
        ("float", "float32"), ("float16", "float16"), ("double", "float64"), ("bool", "bool"),
        ("int8", "int8"), ("int16", "int16"), ("int32", "int32"), ("int64", "int64"),
        ("uint8", "uint8"), ("uint16", "uint16"), ("uint32", "uint32"), ("uint64", "uint64"),
    )
}
_ORT_NAMES = {dtype: name for name, dtype in _ORT_TYPES.items()}


def _ort_dtype(name: str) -> np.dtype:
    found = _ORT_TYPES.get(name)
    if found is None:
        raise InputError(f"values of type {name} cannot leave the GPU as arrays")
    return found


def _ort_type_name(dtype: np.dtype) -> str:
    return _ORT_NAMES.get(np.dtype(dtype), "")


def dtype_of(value: Any) -> np.dtype | None:
    """The numpy dtype of a numpy array, a CUDA array (cupy, torch) or an OrtValue."""
    interface = getattr(value, "__cuda_array_interface__", None)
    if interface is not None:
        return np.dtype(interface["typestr"])
    if callable(getattr(value, "data_type", None)):
        return _ORT_TYPES.get(value.data_type())
    return np.asarray(value).dtype if value is not None else None
