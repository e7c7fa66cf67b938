"""A stand-in for TensorRT behind hybridtrt's narrow interface (``hybridtrt.trt.api``).

"Plans" are JSON headers plus the subgraph (its weights removed when stripped), "engines" run
the subgraph with ONNX Runtime on the host, reading and writing the raw addresses the engine
segment hands them, so the addresses, shapes, profiles and refits hybridtrt sets are exercised
for real. Every call is logged in ``calls`` for the tests to assert on.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from hybridtrt.trt.api import (BuildOutput, BuildSpec, BuildTarget, GpuInfo, ParserVerdict,
                               TensorRTFailure)
from hybridtrt.trt.profiles import profile_settings

_MAGIC = b"FAKEPLAN"


def _parsed(model: bytes, path: str | None) -> onnx.ModelProto:
    """The model as TensorRT's parser reads it: external data next to ``path``, and only then."""
    proto = onnx.load_from_string(model)
    if path is not None:
        onnx.external_data_helper.load_external_data_for_model(proto, str(Path(path).parent))
    return proto


def _network_inputs(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    weights = {t.name for t in model.graph.initializer}
    found = {}
    for value in model.graph.input:
        if value.name in weights:
            continue
        dims = value.type.tensor_type.shape.dim
        found[value.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
    return found


def _cuda_view(pointer: int, shape: Sequence[int], dtype: np.dtype):  # noqa: ANN202
    import cupy

    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    memory = cupy.cuda.MemoryPointer(cupy.cuda.UnownedMemory(pointer, nbytes, None), 0)
    return cupy.ndarray(tuple(shape), dtype, memory)


def _read(pointer: int, shape: Sequence[int], dtype: np.dtype, on_gpu: bool) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0:
        return np.empty(shape, dtype)
    if on_gpu:
        return _cuda_view(pointer, shape, dtype).get()
    raw = (ctypes.c_uint8 * (count * dtype.itemsize)).from_address(pointer)
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape).copy()


def _write(pointer: int, value: np.ndarray, on_gpu: bool) -> None:
    if not value.size:
        return
    if on_gpu:
        _cuda_view(pointer, value.shape, value.dtype).set(np.ascontiguousarray(value))
    else:
        ctypes.memmove(pointer, np.ascontiguousarray(value).ctypes.data, value.nbytes)


class FakeBackend:
    """Builds and runs "engines" as described above.

    Args:
        parser_rejects: Op types the "parser" refuses.
        build_fails: Op types whose presence makes a build fail.
        version: The "TensorRT version".
        capability: The "GPU"'s compute capability.
        data_dependent: Report every output shape as unknown (-1) until the engine ran.
        on_gpu: Addresses are CUDA device memory (read and written through cupy).
        wrong_in_16_bit: Op types whose FP16/BF16 kernels this "TensorRT" gets wrong: an engine
            that computes one of them in 16 bits adds 1 to its output (an engine fault ONNX
            Runtime's emulation of the lowered graph cannot show).
    """

    def __init__(self, parser_rejects: Sequence[str] = (), build_fails: Sequence[str] = (),
                 version: str = "10.99.0", capability: str = "9.0",
                 data_dependent: bool = False, on_gpu: bool = False,
                 wrong_in_16_bit: Sequence[str] = ()) -> None:
        self.on_gpu = on_gpu
        self.wrong_in_16_bit = set(wrong_in_16_bit)
        self.parser_rejects = set(parser_rejects)
        self.build_fails = set(build_fails)
        self.library = "tensorrt"
        self.version = version
        self.capability = capability
        self.data_dependent = data_dependent
        self.calls: list[tuple[str, object]] = []

    def unusable_reason(self, device: str, device_id: int) -> str:
        if self.on_gpu and device != "cuda":  # as real TensorRT: its engines read CUDA memory
            return "the fake's engines read CUDA memory; the predictor runs on the CPU"
        return ""

    def gpu(self, device_id: int) -> GpuInfo:
        return GpuInfo("Fake GPU", self.capability)

    def build_unusable_reason(self, device_id: int) -> str:
        return ""

    def build_target(self, device_id: int, compute_capabilities: Sequence[str]) -> BuildTarget:
        return BuildTarget(self.gpu(device_id))

    def parse_support(self, model: bytes, path: str | None = None) -> ParserVerdict:
        proto = _parsed(model, path)
        self.calls.append(("parse_support", [n.op_type for n in proto.graph.node]))
        rejected = {k: f"no importer for {n.op_type}" for k, n in enumerate(proto.graph.node)
                    if n.op_type in self.parser_rejects}
        return ParserVerdict(frozenset(range(len(proto.graph.node))) - set(rejected), rejected)

    def build(self, model: bytes, spec: BuildSpec, progress: Callable[[str], None],
              path: str | None = None) -> BuildOutput:
        proto = _parsed(model, path)
        ops = [n.op_type for n in proto.graph.node]
        self.calls.append(("build", ops))
        failing = sorted(set(ops) & self.build_fails)
        if failing:
            raise TensorRTFailure(f"no implementation for {failing[0]}")
        inputs = _network_inputs(proto)
        for profile in spec.profiles:
            profile_settings(inputs, profile)  # the checks TensorRT's profile setup does
        if any(-1 in dims for dims in inputs.values()) and not spec.profiles:
            raise TensorRTFailure("dynamic inputs need an optimization profile")
        progress("building")
        if spec.strip_weights:
            for tensor in proto.graph.initializer:
                tensor.ClearField("raw_data")
                tensor.ClearField("float_data")
                tensor.ClearField("int64_data")
                tensor.ClearField("int32_data")
        header = json.dumps({"stripped": spec.strip_weights, "profiles": len(spec.profiles),
                             "version": self.version}).encode()
        plan = _MAGIC + len(header).to_bytes(4, "little") + header + proto.SerializeToString()
        return BuildOutput(plan, spec.timing_cache + b"t")

    def deserialize(self, plan: bytes, refit_model: bytes | None) -> FakeEngine:
        if not plan.startswith(_MAGIC):
            raise TensorRTFailure("not a plan")
        size = int.from_bytes(plan[8:12], "little")
        header = json.loads(plan[12:12 + size])
        self.calls.append(("deserialize", {"refit": refit_model is not None, **header}))
        if header["stripped"]:
            if refit_model is None:
                raise TensorRTFailure("the plan is weight-stripped and nothing refits it")
            model = onnx.load_from_string(refit_model)
        else:
            model = onnx.load_from_string(plan[12 + size:])
        return FakeEngine(_miscomputed(model, self.wrong_in_16_bit), self)


def _miscomputed(model: onnx.ModelProto, ops: set[str]) -> onnx.ModelProto:
    """``model`` with 1 added to the output of every node of ``ops`` that computes in 16 bits."""
    if not ops:
        return model
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*inferred.graph.value_info, *inferred.graph.output)}
    low = (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)
    wrong = onnx.ModelProto()
    wrong.CopyFrom(model)
    nodes = []
    for node in wrong.graph.node:
        nodes.append(node)
        out = node.output[0] if node.output else ""
        if node.op_type not in ops or types.get(out) not in low:
            continue
        node.output[0] = f"{out}__right"
        nodes += [onnx.helper.make_node("Cast", [f"{out}__right"], [f"{out}__f32"],
                                        to=onnx.TensorProto.FLOAT),
                  onnx.helper.make_node("Add", [f"{out}__f32", "fake_one"], [f"{out}__wrong"]),
                  onnx.helper.make_node("Cast", [f"{out}__wrong"], [out], to=types[out])]
    del wrong.graph.node[:]
    wrong.graph.node.extend(nodes)
    wrong.graph.initializer.append(onnx.numpy_helper.from_array(np.array(1.0, np.float32),
                                                                "fake_one"))
    return wrong


class FakeEngine:
    def __init__(self, model: onnx.ModelProto, backend: FakeBackend) -> None:
        self.backend = backend
        self.session = ort.InferenceSession(model.SerializeToString(),
                                            providers=["CPUExecutionProvider"])
        self.inputs = tuple(_network_inputs(model))
        self.outputs = tuple(o.name for o in model.graph.output)
        self.host_inputs: frozenset[str] = frozenset()
        types = {v.name: v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)}
        self._dtypes = {n: np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t)) for n, t in types.items()}

    def dtype(self, name: str) -> np.dtype:
        return self._dtypes[name]

    def create_context(self) -> FakeContext:
        self.backend.calls.append(("create_context", None))
        return FakeContext(self)


class FakeContext:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.calls = engine.backend.calls
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.allocators: dict[str, Callable[[int], int]] = {}
        self.final_shapes: dict[str, tuple[int, ...]] = {}
        self.profile: int | None = None
        self._results: dict[str, np.ndarray] | None = None
        self.profiler: Callable[[str, float], None] | None = None

    def set_profile(self, index: int, stream: int) -> None:
        self.calls.append(("set_profile", index))
        self.profile = index

    def set_input_shape(self, name: str, shape: Sequence[int]) -> None:
        self.calls.append(("set_input_shape", (name, tuple(shape))))
        self.shapes[name] = tuple(shape)
        self._results = None

    def _compute(self) -> dict[str, np.ndarray]:
        if self._results is None:
            on_gpu = self.engine.backend.on_gpu
            feeds = {n: _read(self.addresses[n], self.shapes[n], self.engine.dtype(n), on_gpu)
                     for n in self.engine.inputs}
            values = self.engine.session.run(list(self.engine.outputs), feeds)
            self._results = dict(zip(self.engine.outputs, values))
        return self._results

    def output_shape(self, name: str) -> tuple[int, ...]:
        shape = self._compute()[name].shape
        return tuple(-1 for _ in shape) if self.engine.backend.data_dependent else tuple(shape)

    def set_address(self, name: str, pointer: int) -> None:
        self.calls.append(("set_address", name))
        self.addresses[name] = pointer
        if name in self.engine.inputs:
            self._results = None

    def use_output_allocator(self, name: str, allocate: Callable[[int], int]) -> None:
        self.allocators[name] = allocate

    def allocated_shape(self, name: str) -> tuple[int, ...]:
        return self.final_shapes[name]

    def execute(self, stream: int) -> None:
        self.calls.append(("execute", self.profile))
        self._results = None  # read the inputs as they are now
        for name, value in self._compute().items():
            if name in self.allocators:
                pointer = self.allocators[name](value.nbytes)
                self.final_shapes[name] = value.shape
            else:
                pointer = self.addresses[name]
            _write(pointer, value, self.engine.backend.on_gpu)
        if self.profiler is not None:
            self.profiler("fake_layer", 0.5)

    def set_profiler(self, report: Callable[[str, float], None] | None) -> None:
        self.profiler = report
