"""``Predictor.io_binding()``: ONNX Runtime's ``SessionIOBinding`` calls on a Predictor.

Inputs are bound as arrays (host numpy, or on a GPU predictor device memory by pointer, taken
without a copy); outputs are bound by name and device; ``Predictor.run_with_iobinding`` runs
the bound feeds. Output buffers cannot be pre-bound: the predictor allocates them. Outputs bound
on CUDA are views of the predictor's own buffers, as ORT's are: the next run rewrites them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hybridtrt.errors import InputError
from hybridtrt.runtime.devices.interop import cuda_to_host, is_ort_value

__all__ = ["IOBinding"]

_DEVICES = ("cpu", "cuda")


class _DeviceArray:
    """Device memory at ``pointer``, seen through ``__cuda_array_interface__`` (not owned)."""

    def __init__(self, pointer: int, shape: Sequence[int], dtype: np.dtype) -> None:
        self.shape, self.dtype = tuple(int(d) for d in shape), dtype
        self.__cuda_array_interface__ = {"shape": self.shape,
                                         "typestr": dtype.str, "data": (int(pointer), False),
                                         "version": 3}


def _device(device_type: str, where: str) -> str:
    kind = str(device_type).lower()
    if kind not in _DEVICES:
        raise InputError(f"{where}: device_type must be one of {list(_DEVICES)}, got {device_type!r}")
    return kind


class IOBinding:
    """Bound inputs and outputs of one Predictor (see ``Predictor.io_binding``)."""

    def __init__(self, input_names: Sequence[str], output_names: Sequence[str],
                 on_gpu: bool) -> None:
        self._input_names, self._output_names, self._on_gpu = list(input_names), list(output_names), on_gpu
        self._inputs: dict[str, Any] = {}
        self._outputs: dict[str, str] = {}
        self._results: list[Any] = []

    def _check(self, name: str, names: list[str], what: str) -> None:
        if name not in names:
            raise InputError(f"{what} '{name}' is not one of the model's {what}s {names}")

    def bind_cpu_input(self, name: str, arr_on_cpu: np.ndarray) -> None:
        self._check(name, self._input_names, "input")
        self._inputs[name] = np.asarray(arr_on_cpu)

    def bind_ortvalue_input(self, name: str, ortvalue: Any) -> None:
        self._check(name, self._input_names, "input")
        if ortvalue.device_name().lower() != "cpu":
            raise InputError(f"input '{name}': bind a device OrtValue with bind_input(name, "
                             "'cuda', device_id, dtype, shape, ortvalue.data_ptr())")
        self._inputs[name] = ortvalue.numpy()

    def bind_input(self, name: str, device_type: str, device_id: int, element_type: Any,
                   shape: Sequence[int], buffer_ptr: int) -> None:
        """Bind memory at ``buffer_ptr`` (host or, on a GPU predictor, CUDA device memory)."""
        self._check(name, self._input_names, "input")
        dtype = np.dtype(element_type)
        if _device(device_type, f"input '{name}'") == "cuda":
            if not self._on_gpu:
                raise InputError(f"input '{name}' is bound on CUDA, but the predictor runs on "
                                 "the CPU (Config.enable_use_gpu)")
            self._inputs[name] = _DeviceArray(buffer_ptr, shape, dtype)
            return
        count = int(np.prod(shape)) if len(shape) else 1
        buffer = (np.ctypeslib.as_ctypes_type(dtype) * count).from_address(int(buffer_ptr))
        self._inputs[name] = np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)

    def bind_output(self, name: str, device_type: str = "cpu", device_id: int = 0,
                    element_type: Any = None, shape: Sequence[int] | None = None,
                    buffer_ptr: int | None = None) -> None:
        """Bind an output by name; the predictor allocates it on ``device_type``."""
        self._check(name, self._output_names, "output")
        if buffer_ptr is not None:
            raise InputError(f"output '{name}': hybridtrt allocates outputs; bind it without "
                             "buffer_ptr and read it with copy_outputs_to_cpu()/get_outputs()")
        kind = _device(device_type, f"output '{name}'")
        if kind == "cuda" and not self._on_gpu:
            raise InputError(f"output '{name}' is bound on CUDA, but the predictor runs on the CPU")
        self._outputs[name] = kind

    def clear_binding_inputs(self) -> None:
        self._inputs.clear()

    def clear_binding_outputs(self) -> None:
        self._outputs.clear()
        self._results = []

    def synchronize_inputs(self) -> None:
        return None  # inputs are read on the predictor's stream at run time

    def synchronize_outputs(self) -> None:
        return None  # outputs are complete when run_with_iobinding returns

    def run(self, run: Callable[[dict[str, Any], list[str] | None, bool], dict[str, Any]]) -> None:
        """Run with ``run(feeds, output names or None for all, on_device)`` (the predictor's)."""
        names = list(self._outputs) or list(self._output_names)
        on_device = any(kind == "cuda" for kind in self._outputs.values())
        found = run(dict(self._inputs), None if names == self._output_names else names, on_device)
        self._results = [found[n] for n in names]

    def get_outputs(self) -> list[Any]:
        """The outputs of the last run, in binding order (numpy, or device arrays for 'cuda')."""
        return list(self._results)

    def copy_outputs_to_cpu(self) -> list[np.ndarray]:
        """The outputs of the last run as numpy arrays."""
        return [_to_host(value) for value in self._results]


def _to_host(value: Any) -> np.ndarray:
    """A host copy of an output: numpy, a cupy array, or (without cupy) a DeviceTensor."""
    if isinstance(value, np.ndarray):
        return np.array(value)
    if hasattr(value, "get"):  # cupy
        return value.get()
    owner = getattr(value, "owner", None)
    if is_ort_value(owner) and tuple(owner.shape()) == tuple(value.shape):  # over an ORT value
        return np.array(owner.numpy())
    return cuda_to_host(value)
