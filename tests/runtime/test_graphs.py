"""Which segments may be captured as CUDA graphs (the check runs anywhere; capture needs a GPU)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import onnx.helper as h
from onnx import TensorProto, numpy_helper

from hybridtrt.runtime.graphs import graph_model, graph_safe, single_graph, unsynced_safe
from tests import models


def i64(name: str, values: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, np.int64), name)


def reshaped(shape_from_input: bool) -> bool:
    shape = h.make_tensor_value_info("s", TensorProto.INT64, [2])
    inits = [] if shape_from_input else [i64("s", [1, 8])]
    nodes = [h.make_node("Relu", ["x"], ["r"]), h.make_node("Reshape", ["r", "s"], ["y"])]
    inputs = [models.f32("x", [2, 4])] + ([shape] if shape_from_input else [])
    return graph_safe(models.make(nodes, inputs, [models.f32("y", [1, 8])], inits))


def shape_subgraph(use: str) -> bool:
    """x -> Shape -> Slice -> Concat(-1) -> [Reshape's shape | Cast and Mul | an output]."""
    nodes = [h.make_node("Shape", ["x"], ["s"]),
             h.make_node("Slice", ["s", "zero", "one"], ["n"]),
             h.make_node("Concat", ["n", "minus_one"], ["target"], axis=0)]
    inits = [i64("zero", [0]), i64("one", [1]), i64("minus_one", [-1])]
    outputs = [models.f32("y", ["a", "b"] if use == "reshape" else [2, 3, 4])]
    if use == "reshape":
        nodes.append(h.make_node("Reshape", ["x", "target"], ["y"]))
    elif use == "device":  # the shape value read by a kernel on the GPU
        nodes += [h.make_node("Cast", ["target"], ["t"], to=TensorProto.FLOAT),
                  h.make_node("ReduceSum", ["t"], ["st"], keepdims=0),
                  h.make_node("Mul", ["x", "st"], ["y"])]
    else:  # an output
        nodes.append(h.make_node("Relu", ["x"], ["y"]))
        outputs.append(h.make_tensor_value_info("target", TensorProto.INT64, [2]))
    return graph_safe(models.make(nodes, [models.f32("x", [2, 3, 4])], outputs, inits))


def test_shape_inputs_must_be_constants_or_shape_values_of_the_segment() -> None:
    assert reshaped(shape_from_input=False)
    assert not reshaped(shape_from_input=True)  # ORT would copy it to the host every run
    assert shape_subgraph("reshape")  # computed on the host; a graph per input shape
    assert not shape_subgraph("device")  # a copy to the device every run
    assert not shape_subgraph("output")  # copied from the host into the output every run


def test_values_computed_from_constants_count_as_constants() -> None:
    nodes = [h.make_node("Cast", ["s"], ["s64"], to=TensorProto.INT64),
             h.make_node("Reshape", ["x", "s64"], ["y"])]
    model = models.make(nodes, [models.f32("x", [2, 4])], [models.f32("y", [1, 8])],
                        [numpy_helper.from_array(np.array([1, 8], np.int32), "s")])
    assert graph_safe(model)  # ORT folds the Cast when it makes the session


def test_only_listed_ops_and_no_constant_or_passthrough_outputs() -> None:
    x = models.f32("x", [1, 4])
    conv_like = models.make([h.make_node("Relu", ["x"], ["y"])], [x], [models.f32("y", [1, 4])])
    assert graph_safe(conv_like)
    gemm = models.make([h.make_node("Gemm", ["x", "w"], ["y"])], [x], [models.f32("y", [1, 1])],
                       [numpy_helper.from_array(np.ones((4, 1), np.float32), "w")])
    assert not graph_safe(gemm)  # ORT's Gemm may move a cached buffer (see the module)
    constant = models.make([h.make_node("Relu", ["x"], ["y"]),
                            h.make_node("Constant", [], ["c"], value=numpy_helper.from_array(
                                np.ones(1, np.float32)))], [x],
                           [models.f32("y", [1, 4]), models.f32("c", [1])])
    assert not graph_safe(constant)  # ORT copies a constant output from the host every run
    passthrough = models.make([h.make_node("Relu", ["x"], ["y"])], [x],
                              [models.f32("y", [1, 4]), models.f32("x", [1, 4])])
    assert not graph_safe(passthrough)


def test_concat_of_up_to_32_inputs_and_resize_without_antialias() -> None:
    def concat(count: int) -> bool:
        node = h.make_node("Concat", ["x"] * count, ["y"], axis=1)
        return graph_safe(models.make([node], [models.f32("x", [1, 1])],
                                      [models.f32("y", [1, count])]))

    assert concat(32)
    assert not concat(33)  # ORT stages the input pointers through pinned host memory

    def resize(antialias: int) -> bool:
        node = h.make_node("Resize", ["x", "", "scales"], ["y"], antialias=antialias)
        scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
        model = h.make_model(h.make_graph([node], "t", [models.f32("x", [1, 1, 2, 2])],
                                          [models.f32("y", [1, 1, 4, 4])], [scales]),
                             opset_imports=[h.make_opsetid("", 18)])
        return graph_safe(model)

    assert resize(0)
    assert not resize(1)


def matmul(left: list, right: list | None, via_transpose: bool = False) -> onnx.ModelProto:
    """y = a @ b. ``via_transpose``: b is computed (Transpose of c), its dims not stated; a
    ``right`` of None: b is a Reshape to a shape given at run time, its rank unknown."""
    nodes = [h.make_node("MatMul", ["a", "b"], ["y"])]
    inputs = [models.f32("a", left)]
    if right is None:
        nodes.insert(0, h.make_node("Reshape", ["c", "s"], ["b"]))
        inputs += [models.f32("c", [4, 3]), h.make_tensor_value_info("s", TensorProto.INT64, ["k"])]
    elif via_transpose:
        nodes.insert(0, h.make_node("Transpose", ["c"], ["b"]))
        inputs.append(models.f32("c", right[::-1]))
    else:
        inputs.append(models.f32("b", right))
    rank = max(len(left), len(right or []))
    return models.make(nodes, inputs, [models.f32("y", [f"y{i}" for i in range(rank)])])


def test_a_matmul_whose_batches_may_differ_allows_one_graph_only() -> None:
    x = models.f32("x", [2, 4])
    by_weights = models.make([h.make_node("MatMul", ["x", "w"], ["y"])], [x],
                             [models.f32("y", [2, 3])],
                             [numpy_helper.from_array(np.ones((4, 3), np.float32), "w")])
    assert graph_safe(by_weights) and not single_graph(by_weights)  # one GEMM, nothing staged
    # ORT's strided batched GEMM: the right operand 2-D, or both of one batch
    assert not single_graph(matmul(["N", 8, 4], [4, 3]))
    assert not single_graph(matmul(["N", 8, 4], [4, 3], via_transpose=True))  # inferred 2-D
    assert not single_graph(matmul(["B", 2, "T", 4], ["B", 2, 4, "T"]))
    # otherwise ORT stages per-batch pointer arrays in pinned host memory
    assert single_graph(matmul([1, 8, 4], [2, 4, 3]))
    assert single_graph(matmul(["B", 8, 4], ["C", 4, 3]))  # not known to match
    assert single_graph(matmul([2, 8, 4], [2, 2, 4, 3]))  # broadcast over a new axis
    assert single_graph(matmul([8, 4], [2, 4, 3]))
    assert single_graph(matmul(["N", 8, 4], None))  # rank unknown
    assert single_graph(matmul(["N", 8, 4], [4]))  # a vector: ORT pads it to a batch
    assert single_graph(matmul([8, 4], [4]))
    assert not single_graph(matmul([4], [4]))  # a dot product: one GEMM


def test_without_shape_inference_computed_operands_count_as_staging(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = matmul(["N", 8, 4], [4, 3], via_transpose=True)
    assert not single_graph(model)

    def failing(model: onnx.ModelProto) -> onnx.ModelProto:
        raise onnx.shape_inference.InferenceError("cannot infer")

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", failing)
    assert single_graph(model) and not unsynced_safe(model)


def test_runs_skip_the_stream_sync_only_when_no_kernel_stages_host_memory() -> None:
    assert unsynced_safe(matmul(["B", 2, "T", 4], ["B", 2, 4, "T"]))
    assert not unsynced_safe(matmul([1, 8, 4], [2, 4, 3]))  # pinned pointer arrays
    assert unsynced_safe(gemm(transB=1))  # Gemm's buffer of ones lives on the device
    x = models.f32("x", [1, 2, 4])
    lstm = models.make([h.make_node("LSTM", ["x", "w", "r"], ["", "y"], hidden_size=3)], [x],
                       [models.f32("y", [1, 1, 3])],
                       [numpy_helper.from_array(np.ones((1, 12, 4), np.float32), "w"),
                        numpy_helper.from_array(np.ones((1, 12, 3), np.float32), "r")])
    assert not unsynced_safe(lstm)  # not a listed op (ORT's RNN kernels stage host memory)
    concat = h.make_node("Concat", ["x"] * 33, ["y"], axis=1)
    assert not unsynced_safe(models.make([concat], [x], [models.f32("y", [1, 66, 4])]))


def test_a_concat_skips_the_sync_from_onnxruntime_1_31(monkeypatch: pytest.MonkeyPatch) -> None:
    from hybridtrt.runtime import graphs

    node = h.make_node("Concat", ["x", "x"], ["y"], axis=1)
    model = models.make([node], [models.f32("x", [1, 1])], [models.f32("y", [1, 2])])
    monkeypatch.setattr(graphs, "_concat_staged", lambda: False)
    assert unsynced_safe(model)
    monkeypatch.setattr(graphs, "_concat_staged", lambda: True)  # older: staged arguments
    assert not unsynced_safe(model)


def gemm(**attributes: float) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    node = h.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", **attributes)
    weights = [numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "w"),
               numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")]
    return models.make([node], [models.f32("x", ["N", 4])], [models.f32("y", ["N", 3])], weights)


def test_graph_sessions_get_a_plain_gemm_as_matmul_and_add() -> None:
    model = gemm(transB=1)
    assert not graph_safe(model)
    rewritten = graph_model(model)
    assert [n.op_type for n in rewritten.graph.node] == ["Transpose", "MatMul", "Add"]
    assert graph_safe(rewritten) and not single_graph(model)  # Gemm's B is 2-D: one GEMM
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    got, want = (ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
                 .run(None, {"x": x})[0] for m in (rewritten, model))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [n.op_type for n in model.graph.node] == ["Gemm"]  # the segment's own model stays
    scaled = gemm(transB=1, alpha=2.0)
    assert graph_model(scaled) is scaled  # scaling is left to Gemm (and no graph)
    nodes = [h.make_node("Relu", ["x"], ["a"]), h.make_node("Gemm", ["a", "a"], ["y"], transB=1)]
    computed = models.make(nodes, [models.f32("x", [2, 4])], [models.f32("y", [2, 2])])
    assert graph_safe(graph_model(computed)) and not single_graph(computed)
    twice = models.make([h.make_node("Gemm", ["x", "w", "b"], ["z"], transB=1),
                         h.make_node("Gemm", ["z", "w2"], ["y"])],  # unnamed nodes
                        [models.f32("x", [2, 4])], [models.f32("y", [2, 2])],
                        list(gemm().graph.initializer) + [numpy_helper.from_array(
                            np.ones((3, 2), np.float32), "w2")])
    names = [n.name for n in graph_model(twice).graph.node]
    assert len(set(names)) == len(names)  # ORT refuses a model with two nodes of one name
    ort.InferenceSession(graph_model(twice).SerializeToString(), providers=["CPUExecutionProvider"])


def test_a_concat_allows_one_graph_only_before_onnxruntime_1_31(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from hybridtrt.runtime import graphs

    node = h.make_node("Concat", ["x", "x"], ["y"], axis=1)
    model = models.make([node], [models.f32("x", [1, 1])], [models.f32("y", [1, 2])])
    monkeypatch.setattr(graphs, "_concat_staged", lambda: True)
    assert graph_safe(model) and single_graph(model)
    monkeypatch.setattr(graphs, "_concat_staged", lambda: False)
    assert not single_graph(model)


def test_graph_refusals_name_the_node_or_value() -> None:
    from hybridtrt.runtime.graphs import graph_refusal

    nodes = [h.make_node("Shape", ["x"], ["s"], name="shape"),
             h.make_node("Add", ["x", "s"], ["y"], name="add")]
    model = models.make(nodes, [models.f32("x", [2])], [models.f32("y", [2])])
    assert graph_refusal(model) == "node 'add' (Add) reads shape value 's' on the device"
    passthrough = models.make([], [models.f32("x", [2])], [models.f32("x", [2])])
    assert graph_refusal(passthrough) == ("output 'x' is a constant, a shape value or an input "
                                          "passed through")


def anchors_model() -> onnx.ModelProto:
    """A detector head's anchor row, exported with a dynamic batch: the width is read through
    Shape -> Gather, and Range over it reaches a kernel on the device (x [N, 4, 8, 8])."""
    nodes = [h.make_node("Shape", ["x"], ["s"], name="shape"),
             h.make_node("Gather", ["s", "three"], ["w"], name="width", axis=0),
             h.make_node("Cast", ["w"], ["wf"], name="cast", to=TensorProto.FLOAT),
             h.make_node("Range", ["zero", "wf", "step"], ["r"], name="range"),
             h.make_node("Add", ["x", "r"], ["y"], name="add")]
    inits = [numpy_helper.from_array(np.array(3, np.int64), "three"),
             numpy_helper.from_array(np.array(0, np.float32), "zero"),
             numpy_helper.from_array(np.array(1, np.float32), "step")]
    return models.make(nodes, [models.f32("x", ["N", 4, 8, 8])],
                       [models.f32("y", ["N", 4, 8, 8])], inits)


def test_known_dims_read_through_shape_are_folded_for_graph_sessions() -> None:
    from hybridtrt.runtime.graphs import graph_refusal

    model = anchors_model()
    assert graph_refusal(model) == "node 'add' (Add) reads shape value 'r' on the device"
    folded = graph_model(model)
    assert graph_refusal(folded) is None  # width 8 is known: the anchor row is a constant
    assert [n.op_type for n in folded.graph.node] == ["Shape", "Constant", "Constant", "Constant",
                                                      "Add"]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 4, 8, 8)).astype(np.float32)
        want, got = (ort.InferenceSession(m.SerializeToString(), options,
                                          providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
                     for m in (model, folded))
        np.testing.assert_array_equal(got, want)
    unknown = anchors_model()
    unknown.graph.input[0].type.tensor_type.shape.dim[3].dim_param = "W"
    assert graph_refusal(graph_model(unknown)) is not None  # a width only known at run time


def test_any_op_of_a_host_shape_subgraph_and_split_with_up_to_32_outputs() -> None:
    from hybridtrt.runtime.graphs import graph_refusal

    nodes = [h.make_node("Shape", ["x"], ["s"]),
             h.make_node("Gather", ["s", "zero"], ["n"], axis=0),  # not a graph op, on the host
             h.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
             h.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
             h.make_node("Reshape", ["x", "target"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"), i64("zero1", [0]),
             i64("minus_one", [-1])]
    model = models.make(nodes, [models.f32("x", ["a", 3, 4])], [models.f32("y", ["a", 12])],
                        inits)
    assert graph_refusal(model) is None

    def split(count: int) -> str | None:
        node = h.make_node("Split", ["x", "sizes"], [f"y{i}" for i in range(count)], axis=1,
                           name="split")
        return graph_refusal(models.make([node], [models.f32("x", [1, count])],
                                         [models.f32(f"y{i}", [1, 1]) for i in range(count)],
                                         [i64("sizes", [1] * count)]))

    assert split(32) is None
    assert split(33) == "node 'split' (Split) cannot be captured"  # pointers staged on the host
