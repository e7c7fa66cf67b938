"""The host device: values are numpy arrays, sessions run on ONNX Runtime's CPU provider."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from hybridtrt.errors import InputError
from hybridtrt.runtime.devices.counters import RunStats

__all__ = ["CpuDevice"]


class CpuDevice:
    """Values are numpy arrays; sessions use ONNX Runtime's CPU provider."""

    name = "cpu"
    graphs = False
    may_skip_sync = False
    stream = 0

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads

    def providers(self, graph: bool = False) -> list[Any]:
        return ["CPUExecutionProvider"]

    def limit_graphs(self, session: Any) -> None:
        """No CUDA graphs on the host."""

    def graphs_ended(self, session: Any) -> str:
        return ""

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

    def synchronize(self) -> None:
        """Host work is done when it returns."""

    def count_copies(self, count: int) -> None:
        """Values on the host make no copies to count."""

    def stats(self) -> RunStats:
        return RunStats()

    def to_host(self, value: Any) -> Any:
        if value is None or isinstance(value, (list, tuple)):
            return value  # sequence and optional outputs come back as ONNX Runtime gives them
        return np.asarray(value)

    def shape_of(self, value: Any) -> tuple[int, ...]:
        return tuple(np.shape(value)) if isinstance(value, np.ndarray) else ()

    # Engine memory (engines that run on the host: TensorRT fakes in tests) -------------------

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
