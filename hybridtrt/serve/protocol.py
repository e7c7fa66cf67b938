"""The Open Inference Protocol (KServe v2 REST) in JSON and its binary tensor extension, to and
from numpy: pure functions, no server in them."""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import ml_dtypes
import numpy as np

from hybridtrt.errors import InputError
from hybridtrt.runtime.description import NodeArg

__all__ = ["HEADER_LENGTH", "InferRequest", "TensorSpec", "datatype_of", "encode_response",
           "model_metadata", "parse_request", "tensor_spec"]

HEADER_LENGTH = "Inference-Header-Content-Length"  # the binary extension's header

_DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64), "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16), "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
    "BF16": np.dtype(ml_dtypes.bfloat16), "BYTES": np.dtype(object),
}
_NAMES = {dtype: name for name, dtype in _DATATYPES.items()}


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A model input or output as the protocol describes it (``-1``: a dynamic dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclasses.dataclass(frozen=True)
class InferRequest:
    """A decoded ``POST /v2/models/{name}/infer`` body.

    Attributes:
        id: The request's ``id`` (echoed in the response), or None.
        inputs: ``{input name: array}``, every model input.
        outputs: Outputs asked for, in order (None: every output).
        binary: Outputs to send back as binary data (the binary tensor data extension).
    """

    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: tuple[str, ...] | None
    binary: frozenset[str]


def datatype_of(dtype: np.dtype | None) -> str:
    """The protocol's name of a numpy dtype (``FP32``, ``INT64``, ``BYTES``...)."""
    if dtype is None:
        return "BYTES"
    if dtype.kind in "OSU":
        return "BYTES"
    name = _NAMES.get(np.dtype(dtype))
    if name is None:
        raise InputError(f"dtype {dtype} has no Open Inference Protocol datatype")
    return name


def tensor_spec(arg: NodeArg) -> TensorSpec:
    """How the protocol describes a model input or output (from ``Predictor.get_inputs()``)."""
    shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, datatype_of(arg.dtype), shape)


def model_metadata(name: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                   platform: str = "hybridtrt") -> dict[str, Any]:
    """The body of ``GET /v2/models/{name}``."""
    return {"name": name, "versions": ["1"], "platform": platform,
            "inputs": [s.to_dict() for s in inputs], "outputs": [s.to_dict() for s in outputs]}


def parse_request(body: bytes, inputs: Sequence[TensorSpec], output_names: Sequence[str],
                  header_length: int | None = None) -> InferRequest:
    """Decode an infer request: JSON, or JSON then binary tensors when ``header_length`` is given.

    Raises:
        InputError: Malformed JSON, or an input that is unknown, missing, of another datatype
            or shape than the model's, or whose data does not match its shape (named).
    """
    if header_length is not None and not 0 <= header_length <= len(body):
        raise InputError(f"{HEADER_LENGTH} is {header_length}; the body has {len(body)} bytes")
    head = body if header_length is None else body[:header_length]
    blob = memoryview(body)[len(head):]
    try:
        request = json.loads(head)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the request is not JSON: {exc}") from exc
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise InputError("the request must be a JSON object with an 'inputs' list")
    specs = {s.name: s for s in inputs}
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for entry in request["inputs"]:
        name, array, used = _input(entry, specs, blob[offset:])
        if name in arrays:
            raise InputError(f"input '{name}' is given twice")
        arrays[name] = array
        offset += used
    if offset != len(blob):
        raise InputError(f"the binary data holds {len(blob)} bytes; the inputs' binary_data_size "
                         f"add up to {offset}")
    missing = [s.name for s in inputs if s.name not in arrays]
    if missing:
        raise InputError(f"missing inputs {missing} (the model's inputs are {list(specs)})")
    wanted, binary = _outputs(request, output_names)
    ident = request.get("id")
    return InferRequest(None if ident is None else str(ident), arrays, wanted, binary)


def _input(entry: Any, specs: Mapping[str, TensorSpec],
           blob: memoryview) -> tuple[str, np.ndarray, int]:
    """One request input as ``(name, array, binary bytes it used)``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise InputError("each input must be an object with a 'name'")
    name = entry["name"]
    spec = specs.get(name)
    if spec is None:
        raise InputError(f"unknown input '{name}' (the model's inputs are {list(specs)})")
    datatype, shape = entry.get("datatype"), entry.get("shape")
    if datatype != spec.datatype:
        raise InputError(f"input '{name}' has datatype {datatype}; the model expects "
                         f"{spec.datatype}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InputError(f"input '{name}': 'shape' must be a list of non-negative integers, "
                         f"got {shape!r}")
    _check_shape(name, tuple(shape), spec.shape)
    size = (entry.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or not 0 <= size <= len(blob):
            raise InputError(f"input '{name}': binary_data_size {size!r} is more than the "
                             f"{len(blob)} bytes of binary data left")
        return name, _from_binary(name, bytes(blob[:size]), datatype, shape), size
    if "data" not in entry:
        raise InputError(f"input '{name}' has neither 'data' nor binary_data_size")
    return name, _from_json(name, entry["data"], datatype, shape), 0


def _check_shape(name: str, shape: tuple[int, ...], model: tuple[int, ...]) -> None:
    if len(shape) != len(model):
        raise InputError(f"input '{name}' has rank {len(shape)} (shape {list(shape)}); the "
                         f"model expects rank {len(model)} {list(model)}")
    for axis, (got, want) in enumerate(zip(shape, model)):
        if want > 0 and got != want:
            raise InputError(f"input '{name}' dimension {axis} is {got}; the model fixes it "
                             f"to {want} (shape {list(model)})")


def _from_json(name: str, data: Any, datatype: str, shape: list[int]) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        flat = np.asarray(data, dtype=object).reshape(-1)
        if not all(isinstance(v, str) for v in flat):
            raise InputError(f"input '{name}' (BYTES): 'data' must hold strings")
    else:
        try:
            given = np.asarray(data)
            flat = given.astype(_DATATYPES[datatype]).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InputError(f"input '{name}': 'data' is not a list of {datatype} values: "
                             f"{exc}") from exc
        integral = _DATATYPES[datatype].kind in "biu"
        kind = given.dtype.kind
        if given.size and (kind not in "biuf" or (kind == "f" and integral)):
            raise InputError(f"input '{name}': 'data' holds {given.dtype} values, not {datatype}")
    if flat.size != count:
        raise InputError(f"input '{name}' has {flat.size} values; shape {shape} needs {count}")
    return flat.reshape(shape)


def _from_binary(name: str, raw: bytes, datatype: str, shape: list[int]) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        values, at = [], 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise InputError(f"input '{name}' (BYTES): a length prefix is cut short")
            (length,) = struct.unpack_from("<I", raw, at)
            values.append(raw[at + 4:at + 4 + length].decode("utf-8", errors="replace"))
            at += 4 + length
        flat = np.array(values, dtype=object)
    else:
        itemsize = _DATATYPES[datatype].itemsize
        if len(raw) != count * itemsize:
            raise InputError(f"input '{name}' has {len(raw)} bytes of binary data; shape {shape} "
                             f"of {datatype} needs {count * itemsize}")
        flat = np.frombuffer(raw, dtype=_DATATYPES[datatype]).copy()  # (little-endian hosts)
    if flat.size != count:
        raise InputError(f"input '{name}' has {flat.size} values; shape {shape} needs {count}")
    return flat.reshape(shape)


def _outputs(request: dict[str, Any],
             names: Sequence[str]) -> tuple[tuple[str, ...] | None, frozenset[str]]:
    """The outputs asked for (None: all) and those wanted as binary data."""
    every = bool((request.get("parameters") or {}).get("binary_data_output", False))
    asked = request.get("outputs")
    if asked is None:
        return None, frozenset(names) if every else frozenset()
    if not isinstance(asked, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                              for o in asked):
        raise InputError("'outputs' must be a list of objects with a 'name'")
    wanted = tuple(o["name"] for o in asked)
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise InputError(f"unknown outputs {unknown} (the model's outputs are {list(names)})")
    binary = {o["name"] for o in asked
              if (o.get("parameters") or {}).get("binary_data", every)}
    return wanted, frozenset(binary)


def encode_response(model_name: str, outputs: Mapping[str, np.ndarray], binary: frozenset[str],
                    request_id: str | None = None) -> tuple[bytes, int | None]:
    """The infer response body, and the JSON header's length when binary data follows it."""
    entries, blobs = [], []
    for name, value in outputs.items():
        array = np.asarray(value)
        entry: dict[str, Any] = {"name": name, "datatype": datatype_of(array.dtype),
                                 "shape": list(array.shape)}
        if name in binary:
            raw = _to_binary(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = _to_json(array)
        entries.append(entry)
    body: dict[str, Any] = {"model_name": model_name, "model_version": "1", "outputs": entries}
    if request_id is not None:
        body["id"] = request_id
    head = json.dumps(body, separators=(",", ":")).encode()
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def _to_json(array: np.ndarray) -> list[Any]:
    flat = array.reshape(-1)
    if flat.dtype.kind in "OSU":
        return [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)
                for v in flat]
    if flat.dtype == _DATATYPES["BF16"]:
        flat = flat.astype(np.float32)
    return flat.tolist()


def _to_binary(array: np.ndarray) -> bytes:
    if array.dtype.kind in "OSU":
        parts = []
        for value in array.reshape(-1):
            raw = value if isinstance(value, bytes) else str(value).encode()
            parts.append(struct.pack("<I", len(raw)) + raw)
        return b"".join(parts)
    return np.ascontiguousarray(array).tobytes()
