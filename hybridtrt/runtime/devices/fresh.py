"""Fresh runs: every input and output of a segment bound anew on the session's one IOBinding
(ORT allocates the outputs), and how one input is bound."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from hybridtrt.runtime.devices.counters import Counters
from hybridtrt.runtime.devices.interop import cuda_view

__all__ = ["FreshRuns", "bind_input"]


def bind_input(binding: Any, name: str, value: Any, memory: str, device_id: int) -> None:
    """Bind one input: an ORT value as it is, a host array copied by ORT as it binds it, any
    other CUDA array by its address."""
    import onnxruntime as ort

    if isinstance(value, ort.OrtValue):
        binding.bind_ortvalue_input(name, value)
    elif isinstance(value, np.ndarray):
        binding.bind_cpu_input(name, value)  # ORT copies it to the device as it binds
    else:
        shape, dtype, ptr = cuda_view(value)
        binding.bind_input(name, memory, device_id, dtype, list(shape), ptr)


class FreshRuns:
    """Runs with fresh bindings, one reused IOBinding per session.

    Args:
        memory: Where ORT values live (``"cuda"``, or ``"cpu"`` in tests).
        device_id: The device's index.
        counters: Where copies to the host and outputs left off the device are counted.
    """

    def __init__(self, memory: str, device_id: int, counters: Counters) -> None:
        self.memory = memory
        self.device_id = device_id
        self.counters = counters
        self._bindings: dict[int, Any] = {}  # one IOBinding per session, rebound each run
        self._tensor_names: dict[int, frozenset[str]] = {}  # tensor-typed inputs per session

    def tensor_inputs(self, session: Any) -> frozenset[str]:
        """The session's inputs that take tensors (not sequences or optionals)."""
        found = self._tensor_names.get(id(session))
        if found is None:
            found = frozenset(i.name for i in session.get_inputs() if i.type.startswith("tensor("))
            self._tensor_names[id(session)] = found
        return found

    def bind(self, binding: Any, name: str, value: Any) -> None:
        """``bind_input`` on this device."""
        bind_input(binding, name, value, self.memory, self.device_id)

    def run(self, session: Any, inputs: Mapping[str, Any], outputs: Sequence[str],
            host_outputs: Collection[str], options: Any = None,
            host_values: Collection[str] = ()) -> list[Any]:
        """One run; ``host_outputs`` and ``host_values`` are bound in host memory."""
        import onnxruntime as ort

        binding = self._bindings.get(id(session))
        if binding is None:
            binding = self._bindings[id(session)] = session.io_binding()
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        tensors = self.tensor_inputs(session)
        for name, value in inputs.items():
            if isinstance(value, np.ndarray) and name not in tensors:
                # optional-typed inputs take an OrtValue, not a raw host buffer
                value = ort.OrtValue.ortvalue_from_numpy(value, self.memory, self.device_id)
            self.bind(binding, name, value)
        for name in outputs:
            if name in host_outputs:
                self.counters.host_copies += 1
                binding.bind_output(name, "cpu")  # ORT copies it back within the run
            elif name in host_values:
                binding.bind_output(name, "cpu")  # where ORT writes it
            else:
                binding.bind_output(name, self.memory, self.device_id)
        # Run options: only "no capture" and "no sync" (see run_options and docs/PERFORMANCE.md).
        session.run_with_iobinding(binding, options)
        values = list(binding.get_outputs())
        self.counters.foreign_outputs += sum(
            1 for n, v in zip(outputs, values)
            if n not in host_outputs and n not in host_values and v.device_name().lower() != self.memory)
        return values
