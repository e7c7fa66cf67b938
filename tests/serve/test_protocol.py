"""The Open Inference Protocol codec: JSON and binary tensors to numpy and back, and its errors."""

from __future__ import annotations

import json
import struct

import ml_dtypes
import numpy as np
import pytest

from hybridtrt.errors import InputError
from hybridtrt.runtime.description import NodeArg
from hybridtrt.serve.protocol import (HEADER_LENGTH, TensorSpec, encode_response, model_metadata,
                                      parse_request, tensor_spec)

X = TensorSpec("x", "FP32", (-1, 3, -1))
IDS = TensorSpec("ids", "INT64", (-1,))
OUTPUTS = ["y", "z"]


def body(*inputs: dict, **extra: object) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()


def test_metadata_says_minus_one_for_dynamic_dims_and_names_datatypes() -> None:
    args = [NodeArg("x", "tensor(float)", ["N", 3, None, 224], np.dtype(np.float32)),
            NodeArg("m", "tensor(bool)", [2], np.dtype(np.bool_)),
            NodeArg("s", "tensor(string)", ["N"], np.dtype(object))]
    specs = [tensor_spec(a) for a in args]
    assert specs == [TensorSpec("x", "FP32", (-1, 3, -1, 224)), TensorSpec("m", "BOOL", (2,)),
                     TensorSpec("s", "BYTES", (-1,))]
    meta = model_metadata("rec", specs[:1], specs[1:])
    assert meta["name"] == "rec"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3, -1, 224]}]
    assert [o["datatype"] for o in meta["outputs"]] == ["BOOL", "BYTES"]


@pytest.mark.parametrize("datatype, dtype, values", [
    ("FP32", np.float32, [[0.5, -1.25], [3.0, 4.0]]), ("FP16", np.float16, [[0.5, 1.5], [2, 3]]),
    ("FP64", np.float64, [[1e-300, 2], [3, 4]]), ("INT32", np.int32, [[1, -2], [3, 4]]),
    ("INT64", np.int64, [[2**40, -2], [3, 4]]), ("UINT8", np.uint8, [[0, 255], [3, 4]]),
    ("BOOL", np.bool_, [[True, False], [False, True]]),
    ("BF16", ml_dtypes.bfloat16, [[0.5, 2], [3, 4]])])
def test_json_and_binary_tensors_decode_to_the_same_arrays_and_encode_back(
        datatype: str, dtype: type, values: list) -> None:
    spec = TensorSpec("t", datatype, (-1, 2))
    expected = np.array(values, dtype=dtype)
    as_json = parse_request(body({"name": "t", "datatype": datatype, "shape": [2, 2],
                                  "data": values}), [spec], ["t"])
    raw = expected.tobytes()
    head = body({"name": "t", "datatype": datatype, "shape": [2, 2],
                 "parameters": {"binary_data_size": len(raw)}})
    as_binary = parse_request(head + raw, [spec], ["t"], len(head))
    for parsed in (as_json, as_binary):
        assert parsed.inputs["t"].dtype == expected.dtype
        np.testing.assert_array_equal(parsed.inputs["t"], expected)
    content, length = encode_response("m", {"t": expected}, frozenset())
    assert length is None
    answer = json.loads(content)["outputs"][0]
    assert (answer["datatype"], answer["shape"]) == (datatype, [2, 2])
    np.testing.assert_array_equal(np.array(answer["data"], dtype=dtype).reshape(2, 2), expected)
    content, length = encode_response("m", {"t": expected}, frozenset({"t"}), "id-7")
    header = json.loads(content[:length])
    assert header["id"] == "id-7"
    assert header["outputs"][0]["parameters"] == {"binary_data_size": len(raw)}
    assert content[length:] == raw


def test_bytes_tensors_use_length_prefixed_strings() -> None:
    spec = TensorSpec("s", "BYTES", (-1,))
    raw = b"".join(struct.pack("<I", len(w)) + w for w in (b"ab", b"", "é".encode()))
    head = body({"name": "s", "datatype": "BYTES", "shape": [3],
                 "parameters": {"binary_data_size": len(raw)}})
    parsed = parse_request(head + raw, [spec], ["s"], len(head))
    assert parsed.inputs["s"].tolist() == ["ab", "", "é"]
    as_json = parse_request(body({"name": "s", "datatype": "BYTES", "shape": [3],
                                  "data": ["ab", "", "é"]}), [spec], ["s"])
    assert as_json.inputs["s"].tolist() == ["ab", "", "é"]
    content, length = encode_response("m", {"s": parsed.inputs["s"]}, frozenset({"s"}))
    assert content[length:] == raw


def test_outputs_field_picks_outputs_and_binary_ones() -> None:
    x = {"name": "x", "datatype": "FP32", "shape": [1, 3, 1], "data": [1, 2, 3]}
    ids = {"name": "ids", "datatype": "INT64", "shape": [2], "data": [1, 2]}
    parsed = parse_request(body(x, ids, id="r1", outputs=[
        {"name": "z"}, {"name": "y", "parameters": {"binary_data": True}}]), [X, IDS], OUTPUTS)
    assert (parsed.id, parsed.outputs, parsed.binary) == ("r1", ("z", "y"), frozenset({"y"}))
    every = parse_request(body(x, ids, parameters={"binary_data_output": True}), [X, IDS], OUTPUTS)
    assert (every.outputs, every.binary) == (None, frozenset(OUTPUTS))
    with pytest.raises(InputError, match=r"unknown outputs \['w'\]"):
        parse_request(body(x, ids, outputs=[{"name": "w"}]), [X, IDS], OUTPUTS)


@pytest.mark.parametrize("entry, message", [
    ({"name": "q", "datatype": "FP32", "shape": [1], "data": [1]},
     r"unknown input 'q' .*\['x', 'ids'\]"),
    ({"name": "x", "datatype": "FP16", "shape": [1, 3, 1], "data": [1, 2, 3]},
     "input 'x' has datatype FP16; the model expects FP32"),
    ({"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]},
     r"input 'x' has rank 2 .*expects rank 3"),
    ({"name": "x", "datatype": "FP32", "shape": [1, 4, 1], "data": [1, 2, 3, 4]},
     "input 'x' dimension 1 is 4; the model fixes it to 3"),
    ({"name": "x", "datatype": "FP32", "shape": [1, 3, 2], "data": [1, 2, 3]},
     r"input 'x' has 3 values; shape \[1, 3, 2\] needs 6"),
    ({"name": "x", "datatype": "FP32", "shape": [1, 3, 1], "data": ["a", "b", "c"]},
     "input 'x': 'data'"),
    ({"name": "x", "datatype": "FP32", "shape": [1, 3, 1]}, "input 'x' has neither"),
])
def test_bad_inputs_are_input_errors_naming_the_input(entry: dict, message: str) -> None:
    ids = {"name": "ids", "datatype": "INT64", "shape": [1], "data": [1]}
    with pytest.raises(InputError, match=message):
        parse_request(body(entry, ids), [X, IDS], OUTPUTS)


def test_float_data_for_an_integer_input_is_refused_not_truncated() -> None:
    with pytest.raises(InputError, match="input 'ids': 'data' holds float64 values, not INT64"):
        parse_request(body({"name": "ids", "datatype": "INT64", "shape": [1], "data": [1.5]}),
                      [IDS], [])


def test_malformed_requests_are_input_errors() -> None:
    x = {"name": "x", "datatype": "FP32", "shape": [1, 3, 1], "data": [1, 2, 3]}
    with pytest.raises(InputError, match=r"missing inputs \['ids'\]"):
        parse_request(body(x), [X, IDS], OUTPUTS)
    with pytest.raises(InputError, match="not JSON"):
        parse_request(b"{nope", [X], OUTPUTS)
    with pytest.raises(InputError, match="'inputs' list"):
        parse_request(b"{}", [X], OUTPUTS)
    with pytest.raises(InputError, match="given twice"):
        parse_request(body(x, x), [X], OUTPUTS)
    head = body({"name": "x", "datatype": "FP32", "shape": [1, 3, 1],
                 "parameters": {"binary_data_size": 12}})
    with pytest.raises(InputError, match="binary_data_size 12 is more than the 4 bytes"):
        parse_request(head + b"abcd", [X], OUTPUTS, len(head))
    with pytest.raises(InputError, match="binary data holds 16 bytes; .* add up to 12"):
        parse_request(head + bytes(16), [X], OUTPUTS, len(head))
    with pytest.raises(InputError, match=f"{HEADER_LENGTH} is 999"):
        parse_request(head, [X], OUTPUTS, 999)


def test_tritonclient_bodies_decode_and_our_binary_answers_read_back() -> None:
    http = pytest.importorskip("tritonclient.http")
    x = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    given = http.InferInput("x", list(x.shape), "FP32")
    given.set_data_from_numpy(x)
    wanted = [http.InferRequestedOutput("y", binary_data=True),
              http.InferRequestedOutput("z", binary_data=False)]
    raw, length = http.InferenceServerClient.generate_request_body([given], wanted, request_id="7")
    parsed = parse_request(raw, [X], OUTPUTS, length)
    np.testing.assert_array_equal(parsed.inputs["x"], x)
    assert (parsed.id, parsed.outputs, parsed.binary) == ("7", ("y", "z"), frozenset({"y"}))
    content, head = encode_response("m", {"y": x * 2, "z": x.astype(np.int64)}, parsed.binary, "7")
    result = http.InferResult.from_response_body(content, header_length=head)
    np.testing.assert_array_equal(result.as_numpy("y"), x * 2)
    np.testing.assert_array_equal(result.as_numpy("z"), x.astype(np.int64))
