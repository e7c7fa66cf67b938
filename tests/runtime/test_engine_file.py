"""Side-file plans (``engine_file``): read from the model's folder, run like embedded ones, and
refused, naming the engine and the path, when they point out of it or fail their checksum."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hybridtrt import FormatError, Input, TensorRTConfig, convert, load
from hybridtrt.core.format import stamp_graph_digest
from hybridtrt.runtime import Config, Predictor
from hybridtrt.trt.builder import TensorRTBuilder
from hybridtrt.trt.cache import EngineCache
from tests.fake_tensorrt import FakeBackend
from tests.models import split_chain

ENGINE = "tensorrt_engine_0"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hybrid model whose two engines were built by the fake TensorRT (plans embedded)."""
    folder = tmp_path_factory.mktemp("embedded")
    builder = TensorRTBuilder(FakeBackend(), EngineCache(folder / "cache"))
    config = TensorRTConfig(inputs=[Input("x", (1, 4), (2, 4), (4, 4))], disable_ops=["Sin"])
    return convert(split_chain(), config, builder=builder).save(folder / "model.onnx")


def _attribute(node: onnx.NodeProto, name: str) -> onnx.AttributeProto:
    return next(a for a in node.attribute if a.name == name)


def _side_filed(embedded: Path, folder: Path, location: str | None = None,
                keep_embedded: bool = False) -> Path:
    """The model with each engine's plan moved to ``plans/<engine>.plan`` in ``folder`` (or
    ``location`` for ENGINE; its file is not written then)."""
    model = onnx.load(str(embedded))
    (folder / "plans").mkdir(exist_ok=True)
    for node in model.graph.node:
        if node.op_type != "tensorrt_engine":
            continue
        name = f"plans/{node.name}.plan"
        if node.name == ENGINE and location is not None:
            name = location
        else:
            (folder / name).write_bytes(_attribute(node, "engine").s)
        _attribute(node, "engine_file").s = name.encode()
        if not keep_embedded:
            _attribute(node, "engine").s = b""
    stamp_graph_digest(model)  # (as a writer of side files would)
    onnx.save(model, str(folder / "model.onnx"))
    return folder / "model.onnx"


def _predictor(path: Path, backend: FakeBackend, tmp_path: Path) -> Predictor:
    config = Config(str(path))
    config.disable_gpu()
    config.set_engine_cache_dir(str(tmp_path / "no-cache"))
    return Predictor(config, backend=backend)


def test_a_model_with_side_file_plans_runs_them(embedded: Path, tmp_path: Path) -> None:
    path = _side_filed(embedded, tmp_path)
    backend = FakeBackend()
    predictor = _predictor(path, backend, tmp_path)
    assert [(p.name, p.runs_in, p.reason) for p in predictor.engine_status()] == [
        (name, "tensorrt", "TensorRT 10.99.0, plan from the stored plan")
        for name in ("tensorrt_engine_0", "tensorrt_engine_1")]
    assert "build" not in [c[0] for c in backend.calls]
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    session = ort.InferenceSession(split_chain().SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(predictor.run_dict({"x": x})["y"], session.run(None, {"x": x})[0],
                               rtol=1e-6)
    resaved = load(path).save(tmp_path / "elsewhere" / "whole.onnx")  # the plans embedded now
    assert [bool(e.engine) and not e.engine_file for e in load(resaved).engines] == [True, True]


def test_a_symlink_inside_the_folder_is_followed(embedded: Path, tmp_path: Path) -> None:
    plan = onnx.load(str(embedded))
    real = tmp_path / "plans" / "real.plan"
    real.parent.mkdir()
    real.write_bytes(_attribute(next(n for n in plan.graph.node if n.name == ENGINE), "engine").s)
    os.symlink(real, tmp_path / "link.plan")
    assert load(_side_filed(embedded, tmp_path, "link.plan")).engines[0].engine == \
        real.read_bytes()


@pytest.mark.parametrize(("location", "message"), [
    ("../outside.plan", "must be a path inside the model's folder"),
    ("plans/../../outside.plan", "must be a path inside the model's folder"),
    ("/etc/passwd", "must be a path inside the model's folder"),
    ("link.plan", "outside the model's folder"),
    ("plans/missing.plan", "no such file at"),
    ("plans", "no such file at"),  # (a folder)
    ("tampered.plan", "fails its checksum"),
])
def test_side_files_out_of_the_folder_or_wrong_are_refused(
        embedded: Path, tmp_path: Path, location: str, message: str) -> None:
    model_folder = tmp_path / "model"
    model_folder.mkdir()
    outside = tmp_path / "outside.plan"
    outside.write_bytes(b"plan")
    os.symlink(outside, model_folder / "link.plan")
    (model_folder / "tampered.plan").write_bytes(b"not the plan")
    path = _side_filed(embedded, model_folder, location)
    with pytest.raises(FormatError, match=f"engine '{ENGINE}': its plan file") as caught:
        load(path)
    assert message in str(caught.value) and location.split("/")[-1] in str(caught.value)


def test_a_node_with_both_an_embedded_plan_and_a_side_file_is_refused(
        embedded: Path, tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=f"engine '{ENGINE}': its plan file "
                                          f"'plans/{ENGINE}.plan' is given but the node embeds"):
        load(_side_filed(embedded, tmp_path, keep_embedded=True))
