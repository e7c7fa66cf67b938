"""Input signatures (names, shapes, dtypes) and the one bounded LRU cache keyed by them."""

from __future__ import annotations

import collections
from collections.abc import Hashable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = ["LRU", "Signature", "TensorKey", "signature", "tensor_key"]

TensorKey = tuple[str, tuple[int, ...], str]  # one input: name, shape, dtype
Signature = tuple[TensorKey, ...]  # every input of a run, in order

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def tensor_key(name: str, value: Any) -> TensorKey | None:
    """``(name, shape, dtype)`` of a numpy array, an ORT tensor or a CUDA array; None for
    anything else (sequences, optionals, ORT values that are not tensors)."""
    if isinstance(value, np.ndarray):
        return name, value.shape, value.dtype.str
    if callable(getattr(value, "data_type", None)):  # an OrtValue
        return (name, tuple(value.shape()), value.data_type()) if value.is_tensor() else None
    interface = getattr(value, "__cuda_array_interface__", None)
    if interface is not None:
        return name, tuple(interface["shape"]), str(interface["typestr"])
    return None


def signature(inputs: Mapping[str, Any]) -> Signature | None:
    """Input names, shapes and dtypes; None when an input is not a tensor."""
    parts = []
    for name, value in inputs.items():
        key = tensor_key(name, value)
        if key is None:
            return None
        parts.append(key)
    return tuple(parts)


class LRU(Generic[K, V]):
    """A mapping of at most ``limit`` entries; adding one more drops the least recently used.

    Reading an entry (``get``, ``in``) makes it the most recently used.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"an LRU cache holds at least one entry, got limit={limit}")
        self.limit = limit
        self._entries: collections.OrderedDict[K, V] = collections.OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def __contains__(self, key: object) -> bool:
        if key in self._entries:
            self._entries.move_to_end(key)  # type: ignore[arg-type]
            return True
        return False

    def put(self, key: K, value: V) -> tuple[K, V] | None:
        """Add or replace ``key``; the entry dropped to make room, if any."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.limit:
            return self._entries.popitem(last=False)
        return None

    def pop(self, key: K) -> V | None:
        return self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def values(self) -> Iterator[V]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)
