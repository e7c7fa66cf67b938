"""Bad input gives a clear error naming the thing: files, versions, Inputs, settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from hybridtrt import ConfigError, Input, InputError, ModelLoadError, TensorRTConfig, convert
from tests import models
from tests.suites import paddleocr_models


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model file not found: .*nope.onnx"):
        convert(tmp_path / "nope.onnx")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a file"):
        convert(tmp_path)


def test_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\xff\x00 this is not a protobuf \x13\x37" * 10)
    with pytest.raises(ModelLoadError, match="junk.onnx is not a valid ONNX model"):
        convert(path)


def test_truncated_real_model(tmp_path: Path) -> None:
    data = paddleocr_models()["cls"].read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match="cut.onnx is not a valid ONNX model"):
        convert(path)


def test_ir_version_newer_than_onnx_reads() -> None:
    model = models.split_chain()
    model.ir_version = onnx.IR_VERSION + 1
    with pytest.raises(ModelLoadError, match=f"IR version {onnx.IR_VERSION + 1}.*upgrade onnx"):
        convert(model)


def test_opset_newer_than_onnx_knows() -> None:
    model = models.split_chain()
    model.opset_import[0].version = 999
    with pytest.raises(ModelLoadError, match="opset 999 .*upgrade onnx"):
        convert(model)


def test_invalid_graph_names_the_problem() -> None:
    model = models.split_chain()
    model.graph.node[1].input[1] = "missing_tensor"
    with pytest.raises(ModelLoadError, match="missing_tensor"):
        convert(model)


def test_wrong_type_of_model_argument() -> None:
    with pytest.raises(ModelLoadError, match="takes a path or an onnx.ModelProto, got int"):
        convert(42)  # type: ignore[arg-type]


def test_the_callers_model_proto_is_not_modified() -> None:
    model = models.split_chain()
    before = model.SerializeToString()
    convert(model, TensorRTConfig(inputs=[Input("x", [1, 4], [1, 4], [1, 4])]))
    assert model.SerializeToString() == before


def test_model_with_external_data_is_read_with_its_weights(tmp_path: Path) -> None:
    model = models.split_chain(width=512)
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="ext.bin",
              size_threshold=0)
    hybrid = convert(tmp_path / "ext.onnx", TensorRTConfig(
        inputs=[Input("x", [1, 512], [1, 512], [1, 512])], disable_ops=["Sin"]))
    weight = onnx.numpy_helper.to_array(hybrid.engines[0].subgraph.initializer[0])
    np.testing.assert_array_equal(weight, np.arange(512, dtype=np.float32) / 512)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_input_shape": [2, 4], "optim_input_shape": [1, 4], "max_input_shape": [8, 4]},
         r"dimension 0 must satisfy min <= opt <= max, got 2, 1, 8"),
        ({"min_input_shape": [1, 4], "optim_input_shape": [1, 4, 1], "max_input_shape": [8, 4]},
         "different ranks"),
        ({"min_input_shape": [1, 4]}, "are all required"),
        ({"min_input_shape": [1, 4], "optim_input_shape": [1, 4], "max_input_shape": [1, 4],
          "warmup_data": [np.zeros((1, 4))]}, "either warmup_data or min/optim/max_input_shape"),
        ({"warmup_data": []}, "warmup_data is empty"),
        ({"min_input_shape": [-1, 4], "optim_input_shape": [1, 4], "max_input_shape": [1, 4]},
         "negative dimension"),
        ({"min_input_shape": [1], "optim_input_shape": [1], "max_input_shape": [1],
          "input_data_type": "floaty"}, "not a numpy dtype"),
    ],
)
def test_bad_input_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Input(name="x", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_subgraph_size": 0}, "min_subgraph_size must be >= 1"),
        ({"precision_mode": "fp64"}, "precision_mode 'fp64' is not one of FP32, FP16, BF16, INT8"),
        ({"optimization_level": 7}, "optimization_level must be 0..5"),
        ({"workspace_size": 0}, "workspace_size must be a positive byte count"),
        ({"inputs": [Input("x", [1], [1], [1]), Input(None, [1], [1], [1])]},
         "name all Inputs or none"),
        ({"inputs": ["x"]}, "must hold Input objects"),
    ],
)
def test_bad_config_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TensorRTConfig(**kwargs)  # type: ignore[arg-type]


def _convert_with(*inputs: Input) -> None:
    convert(models.split_chain(), TensorRTConfig(inputs=list(inputs), disable_ops=["Sin"]))


def test_input_name_that_is_not_a_model_input_lists_the_real_ones() -> None:
    with pytest.raises(InputError, match=r"'image' is not a model input; the model's inputs are \['x'\]"):
        _convert_with(Input("image", [1, 4], [1, 4], [1, 4]))


def test_dynamic_input_without_input_is_named_with_its_shape() -> None:
    with pytest.raises(InputError, match=r"need an Input.*'x' \[N, 4\]"):
        _convert_with()


def test_input_rank_disagreeing_with_the_model() -> None:
    with pytest.raises(InputError, match="Input 'x' has rank 3 but the model input has rank 2"):
        _convert_with(Input("x", [1, 4, 1], [1, 4, 1], [1, 4, 1]))


def test_input_range_over_a_dimension_the_model_fixes() -> None:
    with pytest.raises(InputError, match="dimension 1 ranges 4..8 but the model fixes it to 4"):
        _convert_with(Input("x", [1, 4], [1, 4], [1, 8]))


def test_input_dtype_disagreeing_with_the_model() -> None:
    with pytest.raises(InputError, match="Input 'x' has dtype int32 but the model input is float32"):
        _convert_with(Input("x", [1, 4], [1, 4], [1, 4], input_data_type="int32"))


def test_profile_counts_that_do_not_line_up() -> None:
    model = models.make(
        [onnx.helper.make_node("Add", ["a", "b"], ["y"])],
        [models.f32("a", ["N"]), models.f32("b", ["N"])], [models.f32("y", ["N"])])
    inputs = [Input("a", [1], [1], [1]), Input("a", [2], [2], [2]), Input("a", [3], [3], [3]),
              Input("b", [1], [1], [1]), Input("b", [2], [2], [2])]
    with pytest.raises(InputError, match="same number of Input sets.*'a': 3, 'b': 2"):
        convert(model, TensorRTConfig(inputs=inputs, min_subgraph_size=1))


def test_warmup_run_failure_names_the_run_and_shapes() -> None:
    model = models.reshape_by_input_model()
    inputs = [Input("shape", warmup_data=[np.array([5, 5])])]
    with pytest.raises(InputError, match=r"warm-up run 0 with inputs x: \[2, 3\], shape: \[2\]"):
        convert(model, TensorRTConfig(inputs=inputs, min_subgraph_size=1))


def test_unnamed_inputs_match_model_inputs_by_position() -> None:
    hybrid = convert(models.split_chain(), TensorRTConfig(
        inputs=[Input(None, [1, 4], [2, 4], [3, 4])], disable_ops=["Sin"]))
    assert hybrid.engines[0].profiles[0]["x"] == {"min": [1, 4], "opt": [2, 4], "max": [3, 4]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_subgraph_size": "x"}, "min_subgraph_size must be an integer, got 'x'"),
        ({"workspace_size": 1.5}, "workspace_size must be an integer"),
    ],
)
def test_settings_of_the_wrong_type(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TensorRTConfig(**kwargs)  # type: ignore[arg-type]


def test_none_means_empty_and_precision_names_are_case_insensitive() -> None:
    config = TensorRTConfig(inputs=None, disable_ops=None, precision_mode="FP32")  # type: ignore[arg-type]
    assert (config.inputs, config.disable_ops, config.precision_mode.value) == ((), (), "fp32")


@pytest.mark.parametrize("value", [(0, 1, 2), 5])
def test_bad_input_range(value: object) -> None:
    with pytest.raises(ConfigError, match=r"input_range must be \(low, high\)"):
        Input("x", [1], [1], [1], input_range=value)  # type: ignore[arg-type]


def test_unnamed_inputs_for_a_model_without_inputs() -> None:
    h = onnx.helper
    nodes = [h.make_node("Constant", [], ["y"], value_floats=[1.0])]
    model = models.make(nodes, [], [models.f32("y", [1])])
    with pytest.raises(InputError, match="cannot be matched by position to the model's 0 inputs"):
        convert(model, TensorRTConfig(inputs=[Input(None, [1], [1], [1])]))


def test_missing_external_data_file(tmp_path: Path) -> None:
    onnx.save(models.split_chain(width=512), str(tmp_path / "m.onnx"), save_as_external_data=True,
              location="m.bin", size_threshold=0)
    (tmp_path / "m.bin").unlink()
    with pytest.raises(ModelLoadError, match="cannot read its external weight data"):
        convert(tmp_path / "m.onnx")


def test_damaged_engine_attributes_are_a_format_error(tmp_path: Path) -> None:
    from hybridtrt import FormatError, load

    config = TensorRTConfig(inputs=[Input("x", [1, 4], [1, 4], [1, 4])], disable_ops=["Sin"])
    path = convert(models.split_chain(), config).save(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    engine = next(n for n in model.graph.node if n.op_type == "tensorrt_engine")
    for attr in engine.attribute:
        if attr.name == "profiles":
            attr.s = b'{"not": "a list"}'
    onnx.save(model, str(path))
    with pytest.raises(FormatError, match="engine node 'tensorrt_engine_0': attribute 'profiles': .* is not of type 'array'"):
        load(path)
