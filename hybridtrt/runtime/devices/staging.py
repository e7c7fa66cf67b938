"""Reused device buffers for host inputs: per input name, one per shape and dtype, so that
alternating shapes keep their bindings (and CUDA graphs); the least recently used one goes."""

from __future__ import annotations

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
        key: TensorKey = (name, array.shape, array.dtype.str)
        mine = self._buffers.setdefault(name, LRU(self.per_name))
        staged = mine.get(key)
        if staged is not None:
            staged.update_inplace(array)  # no new allocation (a cudaFree would sync the device)
            return staged
        import onnxruntime as ort

        # (allocated, then filled: on host memory, ortvalue_from_numpy would wrap the caller's array)
        staged = ort.OrtValue.ortvalue_from_shape_and_type(list(array.shape), array.dtype,
                                                           self.memory, self.device_id)
        staged.update_inplace(array)
        self._ids.add(id(staged))
        dropped = mine.put(key, staged)
        if dropped is not None:
            self._ids.discard(id(dropped[1]))  # (bindings and replays still holding it keep it alive)
        return staged

    def holds(self, value: Any) -> bool:
        """Whether ``value`` is one of the staging buffers held now."""
        return id(value) in self._ids
