"""Input signatures and the one bounded LRU cache the runtime keys by them."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from hybridtrt.runtime.signatures import LRU, signature, tensor_key


def test_the_least_recently_used_entry_goes_and_reads_count_as_use() -> None:
    cache: LRU[str, int] = LRU(2)
    assert cache.put("a", 1) is None and cache.put("b", 2) is None
    assert cache.get("a") == 1  # a is now the most recently used
    assert cache.put("c", 3) == ("b", 2)
    assert "b" not in cache and "a" in cache  # (``in`` uses a too)
    assert cache.put("d", 4) == ("c", 3)
    assert sorted(cache.values()) == [1, 4] and len(cache) == 2
    assert cache.pop("a") == 1 and cache.pop("a") is None and len(cache) == 1
    with pytest.raises(ValueError, match="at least one entry"):
        LRU(0)


def test_host_arrays_and_ort_values_have_signatures_other_values_none() -> None:
    array = np.ones((2, 3), np.float32)
    value = ort.OrtValue.ortvalue_from_numpy(array)
    assert signature({"x": array, "y": value}) == (
        ("x", (2, 3), "<f4"), ("y", (2, 3), "tensor(float)"))
    assert tensor_key("s", [array]) is None and signature({"x": array, "o": None}) is None
