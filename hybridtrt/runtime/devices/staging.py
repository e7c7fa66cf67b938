"""Reused device buffers for inputs: per input name, one per shape and dtype, so that
alternating shapes keep their bindings (and CUDA graphs); the least recently used one goes.
Host arrays are copied in; with CUDA graphs a caller's device arrays are too (on the device), so
their runs replay the graph captured on the buffer."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hybridtrt.runtime.devices.bound import BOUND_SIGNATURES
from hybridtrt.runtime.signatures import LRU, TensorKey

__all__ = ["Staging"]


class Staging:
    """The staging buffers of one device.

    Args:
        memory: Where the buffers live (``"cuda"``, or ``"cpu"`` in tests).
        device_id: The device's index.
        per_name: Buffers kept per input name.
    """

    def __init__(self, memory: str, device_id: int = 0, per_name: int = BOUND_SIGNATURES) -> None:
        self.memory = memory
        self.device_id = device_id
        self.per_name = per_name
        self._buffers: dict[str, LRU[TensorKey, Any]] = {}
        self._ids: set[int] = set()  # ids of the buffers held

    def stage(self, name: str, array: np.ndarray) -> Any:
        """``array`` copied into the reused buffer of input ``name`` for its shape and dtype."""
        staged = self._buffer(name, array.shape, array.dtype)
        staged.update_inplace(array)  # no new allocation (a cudaFree would sync the device)
        return staged

    def stage_device(self, name: str, shape: tuple[int, ...], dtype: np.dtype, pointer: int,
                     copy: Callable[[int, int, int], None]) -> Any:
        """A device array (C order, at ``pointer``) copied into the reused buffer of input
        ``name`` by ``copy(target, source, size)``, a device-to-device copy on the stream."""
        staged = self._buffer(name, shape, dtype)
        size = math.prod(shape) * np.dtype(dtype).itemsize  # (Python ints: no overflow)
        if size:
            copy(int(staged.data_ptr()), pointer, size)
        return staged

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """The reused buffer of ``name`` for ``shape`` and ``dtype``, allocated when new."""
        key: TensorKey = (name, tuple(shape), np.dtype(dtype).str)
        mine = self._buffers.setdefault(name, LRU(self.per_name))
        staged = mine.get(key)
        if staged is not None:
            return staged
        import onnxruntime as ort

        # (allocated, then filled: on host memory, ortvalue_from_numpy would wrap the caller's array)
        staged = ort.OrtValue.ortvalue_from_shape_and_type(list(shape), np.dtype(dtype),
                                                           self.memory, self.device_id)
        self._ids.add(id(staged))
        dropped = mine.put(key, staged)
        if dropped is not None:
            self._ids.discard(id(dropped[1]))  # (bindings and replays still holding it keep it alive)
        return staged

    def holds(self, value: Any) -> bool:
        """Whether ``value`` is one of the staging buffers held now."""
        return id(value) in self._ids
