"""A tampered or malformed engine node is one FormatError at load naming the engine and field."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from hybridtrt import FormatError, Input, ModelLoadError, TensorRTConfig, convert, load
from tests import models

CONFIG = TensorRTConfig(inputs=[Input("x", [1, 4], [2, 4], [8, 4])], disable_ops=["Sin"])


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(models.split_chain(), CONFIG).save(tmp_path_factory.mktemp("m") / "m.onnx")


def _engine(model: onnx.ModelProto) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == "tensorrt_engine")


def _with_attribute(saved: Path, name: str, text: str, folder: Path) -> Path:
    model = onnx.load(str(saved))
    next(a for a in _engine(model).attribute if a.name == name).s = text.encode()
    onnx.save(model, str(folder / "t.onnx"))
    return folder / "t.onnx"


@pytest.mark.parametrize(("name", "text", "message"), [
    ("profiles", '[{"inputs": {"x": {"min": [1, 4], "opt": [2, 4]}}}]',
     "attribute 'profiles'[0]['inputs']['x']: 'max' is a required property"),
    ("profiles", '[{"inputs": ["x"]}]', "attribute 'profiles'[0]['inputs']: ['x'] is not of type 'object'"),
    ("profiles", "null", "attribute 'profiles': None is not of type 'array'"),
    ("profiles", '[{"inputs": {"x": 5}}]', "attribute 'profiles'[0]['inputs']['x']: 5 is not of type"),
    ("profiles", '[{"inputs": {"x": {"min": [1, "4"], "opt": [2, 4], "max": [8, 4]}}}]',
     "attribute 'profiles'[0]['inputs']['x']['min'][1]: '4' is not of type 'integer'"),
    ("precision", "[1]", "attribute 'precision': [1] is not of type 'object'"),
    ("precision", '"fp16"', "attribute 'precision': 'fp16' is not of type 'object'"),
    ("build_settings", "[1, 2]", "attribute 'build_settings': [1, 2] is not of type 'object'"),
    ("fingerprint", "{", "has malformed attributes"),
])
def test_a_malformed_attribute_is_named(saved: Path, tmp_path: Path, name: str, text: str,
                                        message: str) -> None:
    with pytest.raises(FormatError, match="engine node 'tensorrt_engine_0'") as caught:
        load(_with_attribute(saved, name, text, tmp_path))
    assert message in str(caught.value)


def test_an_undefined_weight_type_and_a_nested_engine_are_refused(saved: Path, tmp_path: Path) -> None:
    model = onnx.load(str(saved))
    engine = _engine(model)
    graph = next(a for a in engine.attribute if a.name == "subgraph").g
    graph.initializer.add(name="odd", data_type=9999)
    onnx.save(model, str(tmp_path / "odd.onnx"))
    with pytest.raises(FormatError, match="weight 'odd' has data type 9999, which ONNX does not define"):
        load(tmp_path / "odd.onnx")
    model = onnx.load(str(saved))
    graph = next(a for a in _engine(model).attribute if a.name == "subgraph").g
    graph.node.append(onnx.helper.make_node("tensorrt_engine", [], [], name="inner",
                                            domain=_engine(model).domain))
    onnx.save(model, str(tmp_path / "nested.onnx"))
    with pytest.raises(FormatError, match=r"holds hybridtrt node\(s\) \['inner'\]; engines do not nest"):
        load(tmp_path / "nested.onnx")


def _external_model(folder: Path) -> Path:
    """A model whose weight lives in ``w.data`` next to it."""
    import numpy as np

    weight = onnx.numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 4])], [weight])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)],
                                   ir_version=9)
    onnx.save(model, str(folder / "m.onnx"), save_as_external_data=True, location="w.data",
              size_threshold=0)
    return folder / "m.onnx"


def test_external_data_must_be_a_file_inside_the_models_folder(tmp_path: Path) -> None:
    path = _external_model(tmp_path)
    convert(str(path), TensorRTConfig())  # as written: fine
    secret = tmp_path.parent / f"{tmp_path.name}-secret.bin"
    secret.write_bytes((tmp_path / "w.data").read_bytes())
    (tmp_path / "w.data").unlink()
    (tmp_path / "w.data").symlink_to(secret)
    with pytest.raises(ModelLoadError, match=r"weight 'w' reads external data 'w.data', which is "
                                             r"not a file inside the model's folder"):
        convert(str(path), TensorRTConfig())
    model = onnx.load(str(path), load_external_data=False)
    location = next(e for e in model.graph.initializer[0].external_data if e.key == "location")
    location.value = f"../{secret.name}"
    onnx.save(model, str(tmp_path / "out.onnx"))
    with pytest.raises(ModelLoadError, match=r"reads external data '\.\./"):
        convert(str(tmp_path / "out.onnx"), TensorRTConfig())


def test_a_flipped_bit_in_a_weight_onnx_runtime_runs_fails_the_load(tmp_path: Path) -> None:
    config = TensorRTConfig(inputs=[], disable_ops=["MatMul"])  # fc stays in the main graph
    saved = convert(models.conv_classifier(), config).save(tmp_path / "m.onnx")
    assert load(saved).model.graph.initializer  # the weight ONNX Runtime runs is there
    model = onnx.load(str(saved))
    weight = next(t for t in model.graph.initializer if t.name == "fc")
    values = onnx.numpy_helper.to_array(weight).copy()
    values.view("uint32").flat[3] ^= 1 << 30  # one bit
    weight.CopyFrom(onnx.numpy_helper.from_array(values, "fc"))
    onnx.save(model, str(tmp_path / "flipped.onnx"))
    with pytest.raises(FormatError, match="its graph or weights do not match the checksum saved"):
        load(tmp_path / "flipped.onnx")
    assert load(tmp_path / "flipped.onnx", verify=False).engines  # trusted: read anyway
    again = load(saved).save(tmp_path / "again.onnx")  # a save stamps the digest afresh
    assert Path(again).read_bytes() == Path(saved).read_bytes()


def test_the_checksum_holds_for_weights_inside_and_outside_engines_in_external_data(tmp_path: Path) -> None:
    import numpy as np

    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), f"w{k}")
               for k in range(3)]
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["a"]), helper.make_node("MatMul", ["a", "w1"], ["b"]),
             helper.make_node("Sin", ["b"], ["c"]), helper.make_node("MatMul", ["c", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 64])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    config = TensorRTConfig(inputs=[], disable_ops=["Sin"], min_subgraph_size=2)
    saved = convert(model, config).save(tmp_path / "m.onnx", external_data=True)
    assert len(list(tmp_path.glob("m.onnx.*.data"))) == 1  # engine and main-graph weights outside
    again = load(saved)  # verifies
    assert load(again.save(tmp_path / "inline.onnx", external_data=False)).engines


def _variants(value: object) -> list[object]:
    """``value`` and every value one change away from it (a part dropped, retyped, renamed)."""
    found: list[object] = [value, None, 1, 1.0, True, "s", [], {}]
    if isinstance(value, dict):
        for key in value:
            found.append({k: v for k, v in value.items() if k != key})
            found.append({**value, f"{key}_": value[key]})
            found += [{**value, key: v} for v in _variants(value[key])[1:]]
    if isinstance(value, list) and value:
        found.append(value[1:])
        found += [[v, *value[1:]] for v in _variants(value[0])[1:]]
    return found


@pytest.mark.parametrize(("field", "record"), [
    ("profiles", [{"inputs": {"x": {"min": [1, 4], "opt": [2, 4], "max": [8, 4]}},
                   "outputs": {"y": {"min": [1], "opt": [2], "max": [8]}}}]),
    ("precision", {"mode": "fp16", "fp32_nodes": [["n", "Cast", "why"]]}),
    ("build_settings", {"fp16": True}),
    ("fingerprint", {"tensorrt_version": "1.7"}),
])
def test_the_plain_record_check_accepts_only_what_the_schema_accepts(field: str, record: object) -> None:
    from hybridtrt.core import format_schema

    validator = format_schema._VALIDATORS[field]  # noqa: SLF001
    variants = _variants(record)
    assert format_schema._PLAIN[field](record)  # noqa: SLF001  (what convert writes: fast)
    for value in variants:
        if format_schema._PLAIN[field](value):  # noqa: SLF001
            assert validator.is_valid(value), (field, value)
        elif not validator.is_valid(value):
            with pytest.raises(FormatError, match=f"attribute '{field}'"):
                format_schema.check_record("e", field, value)
    assert sum(not validator.is_valid(v) for v in variants) > 5
