"""Models over protobuf's 2 GiB: convert, save, load and run like ONNX Runtime.

The limit (``hybridtrt.core.external.LARGE_ABOVE``) is lowered to a few hundred KiB so the
large-model paths run on a small model; the real > 2 GiB model runs with
``HYBRIDTRT_LARGE_TESTS=1`` (``benchmarks/large_model.py``, about 2.5 GiB of weights).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf.message import EncodeError
from onnx import TensorProto, helper, numpy_helper

import hybridtrt.core.external as external
import hybridtrt.core.hybrid as hybrid_module
import hybridtrt.core.references as references
from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.core.format import STATUS_BUILT, subgraph_digest
from hybridtrt.core.hybrid import load
from hybridtrt.errors import ModelLoadError, SaveError
from hybridtrt.runtime import Config, Predictor
from hybridtrt.trt.builder import TensorRTBuilder
from hybridtrt.trt.backends import load_backend
from hybridtrt.trt.cache import EngineCache
from hybridtrt.trt.library import RTX, installed
from tests.fake_tensorrt import FakeBackend
from tests.models import matmul_chain_file as _chain

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 96  # 96 * 96 * 4 B = 36 KiB per weight


@pytest.fixture
def large_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(external, "LARGE_ABOVE", 100_000)


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What every ONNX Runtime session was made from (bytes or a path)."""
    made: list[object] = []
    real = ort.InferenceSession

    def recording(source: object, *args: object, **kwargs: object) -> object:
        made.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    return made


def test_a_large_model_converts_saves_loads_and_runs_like_onnx_runtime(
        tmp_path: Path, large_limit: None, sessions: list[object]) -> None:
    source = _chain(tmp_path)
    hybrid = convert(str(source), TensorRTConfig(disable_ops=["Sigmoid"]))
    assert len(hybrid.engines) == 2
    saved = hybrid.save(tmp_path / "hybrid" / "model.onnx")  # large: weights go to a data file
    data = [p for p in saved.parent.iterdir() if p.suffix == ".data"]
    assert len(data) == 1 and data[0].stat().st_size >= 8 * WIDTH * WIDTH * 4
    assert saved.stat().st_size < 64 * 1024
    with pytest.raises(SaveError, match="2 GiB"):
        hybrid.save(tmp_path / "inline.onnx", external_data=False)
    loaded = load(saved)  # every checksum verified
    assert references.has_references(loaded.model)  # its weights stay in its data file
    predictor = Predictor(Config(str(saved)), loaded)
    x = np.random.default_rng(1).standard_normal((2, WIDTH), dtype=np.float32)
    got = predictor.run(None, {"x": x})[0]
    assert sessions and all(isinstance(s, str) for s in sessions)  # never whole-model bytes
    reference = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(got, reference.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_a_large_model_from_a_proto_is_shape_inferred_and_left_unchanged(
        tmp_path: Path, large_limit: None) -> None:
    model = onnx.load(str(_chain(tmp_path)))
    before = hashlib.sha256(model.SerializeToString()).hexdigest()
    hybrid = convert(model, TensorRTConfig(disable_ops=["Sigmoid"]))
    assert hashlib.sha256(model.SerializeToString()).hexdigest() == before
    record = hybrid.engines[0]
    assert [d.dim_value for d in record.subgraph.output[0].type.tensor_type.shape.dim] == [2, WIDTH]


def test_a_large_dynamic_model_records_its_shape_ranges_through_a_file(
        tmp_path: Path, large_limit: None, sessions: list[object]) -> None:
    source = _chain(tmp_path, batch="N")
    config = TensorRTConfig(disable_ops=["Sigmoid"], inputs=[Input(
        "x", min_input_shape=[1, WIDTH], optim_input_shape=[2, WIDTH], max_input_shape=[4, WIDTH])])
    hybrid = convert(str(source), config)
    assert sessions and all(isinstance(s, str) for s in sessions)  # the warm-up runs
    assert hybrid.engines[1].profiles[0]["mid"] == {"min": [1, WIDTH], "opt": [2, WIDTH],
                                                    "max": [4, WIDTH]}


def test_an_engine_over_the_limit_is_split_into_pieces_tensorrt_can_parse(
        tmp_path: Path, large_limit: None) -> None:
    backend = FakeBackend()
    builder = TensorRTBuilder(backend, EngineCache(tmp_path / "cache"))
    config = TensorRTConfig(disable_ops=["Sigmoid"], min_subgraph_size=2)
    hybrid = convert(str(_chain(tmp_path)), config, builder=builder)  # 4 weights per side
    assert [[n.name for n in e.subgraph.node] for e in hybrid.engines] == [
        ["mm0", "mm1"], ["mm2", "mm3"], ["mm4", "mm5"], ["mm6", "mm7"]]
    assert all(e.status == STATUS_BUILT for e in hybrid.engines)


def test_externalized_writes_every_large_tensor_once_and_reads_back_equal(tmp_path: Path) -> None:
    big = np.arange(4096, dtype=np.float32).reshape(64, 64)
    body = helper.make_graph([helper.make_node("Identity", ["b"], ["y"])], "body", [],
                             [helper.make_tensor_value_info("y", 1, [64, 64])],
                             [numpy_helper.from_array(big * 2, "b")])
    node = helper.make_node("If", ["c"], ["out"], then_branch=body, else_branch=body)
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(big, "k")), node],
        "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", 1, [64, 64])],
        [numpy_helper.from_array(big + 1, "w"), numpy_helper.from_array(np.ones(3, np.float32), "s")])
    model = helper.make_model(graph)
    skeleton = external.externalized(model, tmp_path, "w.data")
    assert skeleton.ByteSize() < 4096 and (tmp_path / "w.data").stat().st_size >= 4 * big.nbytes
    onnx.save_model(skeleton, str(tmp_path / "m.onnx"))
    back = onnx.load(str(tmp_path / "m.onnx"))
    tensors = {t.name: numpy_helper.to_array(t)
               for t in onnx.external_data_helper._get_all_tensors(back)}  # noqa: SLF001
    np.testing.assert_array_equal(tensors["w"], big + 1)
    np.testing.assert_array_equal(tensors["b"], big * 2)
    np.testing.assert_array_equal(tensors["k"], big)
    np.testing.assert_array_equal(tensors["s"], np.ones(3, np.float32))  # small: kept inline
    assert not external.externalized(helper.make_model(helper.make_graph([], "e", [], [])),
                                     tmp_path, "none.data").graph.initializer
    assert not (tmp_path / "none.data").exists()


def test_the_subgraph_digest_is_the_sha256_of_the_canonical_serialization() -> None:
    w = helper.make_tensor("w", 1, [2, 2], [1.0, 2.0, 3.0, 4.0])  # typed fields, not raw
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="m")], "g",
        [helper.make_tensor_value_info("x", 1, [1, 2])], [helper.make_tensor_value_info("y", 1, [1, 2])],
        [w, numpy_helper.from_array(np.ones(2, np.float32), "b")], doc_string="d",
        value_info=[helper.make_tensor_value_info("y", 1, [1, 2])])
    canonical = onnx.GraphProto()
    canonical.CopyFrom(graph)
    for tensor in canonical.initializer:
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))
    expected = hashlib.sha256(canonical.SerializeToString(deterministic=True)).hexdigest()
    assert subgraph_digest(graph) == expected
    canonical.name = ""
    assert subgraph_digest(graph, name="") == hashlib.sha256(
        canonical.SerializeToString(deterministic=True)).hexdigest()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("HYBRIDTRT_LARGE_TESTS") != "1",
                    reason="builds a 2.5 GiB model: set HYBRIDTRT_LARGE_TESTS=1")
def test_a_model_over_2_gib_runs_end_to_end_like_onnx_runtime() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "large_model.py")],
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(r"weights: ([\d.]+) GiB, engines: (\d+), max \|hybrid - ORT\|: (\S+)",
                      done.stdout)
    assert found, done.stdout
    assert float(found[1]) > 2 and found[2] == "2" and float(found[3]) < 1e-3


def test_a_large_model_keeps_its_weights_in_the_source_file_until_save(
        tmp_path: Path, large_limit: None) -> None:
    source = _chain(tmp_path)
    hybrid = convert(str(source), TensorRTConfig(disable_ops=["Sigmoid"]))
    weights = [t for e in hybrid.engines for t in e.subgraph.initializer]
    assert len(weights) == 8 and all(references.is_reference(t) and not t.raw_data
                                     for t in weights)
    for engine in hybrid.engines:
        engine.verify()  # the checksums read the weights from the file
    saved = hybrid.save(tmp_path / "hybrid")
    inline = convert(onnx.load(str(source)), TensorRTConfig(disable_ops=["Sigmoid"]))
    assert [e.subgraph_sha256 for e in inline.engines] == [e.subgraph_sha256 for e in hybrid.engines]
    back = onnx.load(str(saved))  # the saved model names its own data file, and no folder
    assert not references.has_references(back)
    assert all(entry.key != references.FOLDER_KEY for t in
               onnx.external_data_helper._get_all_tensors(onnx.load(str(saved), load_external_data=False))  # noqa: SLF001
               for entry in t.external_data)
    np.testing.assert_array_equal(
        numpy_helper.to_array([t for t in back.graph.node[1].attribute[0].g.initializer][0]),
        numpy_helper.to_array(onnx.load(str(source)).graph.initializer[0]))


@pytest.mark.parametrize("mode", ["fp16", "bf16"])
def test_a_large_low_precision_model_loaded_back_runs_as_its_inline_conversion(
        tmp_path: Path, large_limit: None, mode: str) -> None:
    source = _chain(tmp_path)
    config = TensorRTConfig(disable_ops=["Sigmoid"], min_subgraph_size=2, precision_mode=mode)
    x = np.random.default_rng(1).standard_normal((2, WIDTH), dtype=np.float32)
    got = []
    for given, folder in ((str(source), "from-file"), (onnx.load(str(source)), "inline")):
        saved = convert(given, config).save(tmp_path / folder)
        loaded = load(saved)  # FP16/BF16 weights left in the data file, emulated in FP32
        got.append(Predictor(Config(str(saved)), loaded).run(None, {"x": x})[0])
    np.testing.assert_array_equal(got[0], got[1])
    reference = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(got[0], reference.run(None, {"x": x})[0], atol=0.05)


def test_a_large_model_calibrates_to_int8_as_its_inline_conversion(
        tmp_path: Path, large_limit: None) -> None:
    """INT8 calibration runs ONNX Runtime's calibrator on a copy of the model written with
    external data: weights left in the source file are streamed into it (they were left out,
    and the calibrator found no data file)."""
    source = _chain(tmp_path)
    rng = np.random.default_rng(3)
    samples = [{"x": rng.standard_normal((2, WIDTH), dtype=np.float32)} for _ in range(4)]
    config = TensorRTConfig(disable_ops=["Sigmoid"], min_subgraph_size=2, precision_mode="int8",
                            calibration_data=samples)
    x = samples[0]["x"]
    got = []
    for given, folder in ((str(source), "from-file"), (onnx.load(str(source)), "inline")):
        hybrid = convert(given, config)
        assert all(e.precision.get("quantize_nodes", 0) > 0 for e in hybrid.engines)
        saved = hybrid.save(tmp_path / folder)
        got.append(Predictor(Config(str(saved)), load(saved)).run(None, {"x": x})[0])
    np.testing.assert_array_equal(got[0], got[1])
    want = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.linalg.norm(got[0] - want) / np.linalg.norm(want) < 0.1


def test_a_model_saved_over_its_source_runs_and_the_one_in_memory_says_its_file_is_gone(
        tmp_path: Path, large_limit: None) -> None:
    """Saving over the plain model it came from replaces that model (and its data file); the
    saved file answers as ONNX Runtime did, and the HybridModel still in memory, whose weights
    were left in the old data file, fails with an error naming the weight and the file."""
    source = _chain(tmp_path)
    x = np.random.default_rng(4).standard_normal((2, WIDTH), dtype=np.float32)
    want = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    hybrid = convert(str(source), TensorRTConfig(disable_ops=["Sigmoid"]))
    saved = hybrid.save(source)
    got = Predictor(Config(str(saved)), load(saved)).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert not (tmp_path / "model.onnx.data").exists()  # the old model's data file went with it
    with pytest.raises(ModelLoadError, match=r"weight 'w0': cannot read its data file "
                                             r"'model\.onnx\.data'"):
        hybrid.save(tmp_path / "elsewhere")


def test_a_reference_through_a_symlink_made_after_loading_is_refused(
        tmp_path: Path, large_limit: None) -> None:
    source = _chain(tmp_path)
    hybrid = convert(str(source), TensorRTConfig(disable_ops=["Sigmoid"]))
    data = tmp_path / "model.onnx.data"
    data.rename(tmp_path / "elsewhere.data")
    data.symlink_to(tmp_path / "elsewhere.data")
    with pytest.raises(ModelLoadError, match="symlinks"):
        hybrid.save(tmp_path / "hybrid")


def test_a_model_naming_a_folder_no_model_was_loaded_from_is_refused(
        tmp_path: Path, large_limit: None) -> None:
    model = onnx.load(str(_chain(tmp_path)))
    tensor = model.graph.initializer[0]
    onnx.external_data_helper.set_external_data(tensor, "passwd")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    tensor.external_data.add(key=references.FOLDER_KEY, value="/etc")
    with pytest.raises(ModelLoadError, match="no model was loaded from"):
        convert(model, TensorRTConfig(disable_ops=["Sigmoid"]))


def test_a_save_whose_model_file_would_pass_2_gib_says_why(
        tmp_path: Path, large_limit: None, monkeypatch: pytest.MonkeyPatch) -> None:
    hybrid = convert(str(_chain(tmp_path)), TensorRTConfig(disable_ops=["Sigmoid"]))

    class TooLarge:  # stands for a skeleton whose plans pass protobuf's limit
        def __getattr__(self, name: str) -> object:
            raise EncodeError("Failed to serialize proto")

    monkeypatch.setattr(hybrid_module, "externalized", lambda *args: TooLarge())
    with pytest.raises(SaveError, match="besides the weights and plans is over protobuf's 2 GiB"):
        hybrid.save(tmp_path / "hybrid")


@pytest.mark.skipif(not installed(RTX), reason="tensorrt_rtx is not installed")
def test_plans_that_would_pass_2_gib_in_the_model_file_go_to_side_files(
        tmp_path: Path, large_limit: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full plans (TensorRT-RTX builds them on a CPU, holding their weights) of a large model
    go to ``<model>.<sha>.plan`` files when the model file would pass the limit (lowered
    here): the model file stays small, load reads the plans back, checksums hold, the answer is
    ONNX Runtime's, and a later save to the path removes plan files it no longer names."""
    import hybridtrt.core.side_plans as side_plans

    backend, reason = load_backend(RTX)
    assert backend is not None, reason
    source = _chain(tmp_path)
    config = TensorRTConfig(disable_ops=["Sigmoid"], min_subgraph_size=2)
    builder = TensorRTBuilder(backend, EngineCache(tmp_path / "cache"))
    hybrid = convert(str(source), config, builder=builder)  # 4 pieces of 2 weights
    assert [e.status for e in hybrid.engines] == [STATUS_BUILT] * 4
    monkeypatch.setattr(side_plans, "PLANS_APART_ABOVE", 4 * WIDTH * WIDTH)  # (< one plan)
    saved = hybrid.save(tmp_path / "hybrid" / "model.onnx")
    plans = sorted(p.name for p in saved.parent.glob("*.plan"))
    digests = [e.engine_sha256[:16] for e in hybrid.engines]
    assert plans == sorted(f"model.onnx.{d}.plan" for d in digests)
    assert saved.stat().st_size < 64 * 1024  # neither weights nor plans inside
    loaded = load(saved)  # every checksum verified, the plans read back
    assert [e.engine for e in loaded.engines] == [e.engine for e in hybrid.engines]
    assert all(not e.engine_file for e in loaded.engines)  # whole in memory
    x = np.random.default_rng(2).standard_normal((2, WIDTH), dtype=np.float32)
    got = Predictor(Config(str(saved)), loaded).run(None, {"x": x})[0]  # (engines through ORT here)
    want = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(side_plans, "PLANS_APART_ABOVE", 1 << 40)
    hybrid.save(saved)  # plans inside again: the old plan files go
    assert not list(saved.parent.glob("*.plan")) and load(saved).engines[0].engine


@pytest.mark.parametrize("length", [100, 127, 128, 16383, 16384, 2097152])
def test_plans_go_apart_exactly_when_the_model_file_would_pass_the_limit_with_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, length: int) -> None:
    """``save`` sizes the model file with its plans from their lengths (the skeleton leaves
    them out): the same decision as sizing a skeleton with the plans inside, to the byte,
    across the lengths where protobuf's varints grow."""
    import hybridtrt.core.side_plans as side_plans

    nodes = [helper.make_node("tensorrt_engine", ["a"], ["b"], name=f"e{k}", domain="hybridtrt",
                              engine=bytes([k + 1]) * (length + k), engine_file="",
                              engine_sha256=f"{k:064x}") for k in range(2)]
    graph = helper.make_graph(nodes, "g", [], [], [numpy_helper.from_array(
        np.ones((64, 64), np.float32), "w")], doc_string="d" * length)
    model = helper.make_model(graph)
    (tmp_path / "whole").mkdir()
    whole = external.externalized(model, tmp_path / "whole", "w.data").ByteSize()  # plans inside
    for limit, apart in ((whole, False), (whole - 1, True)):
        monkeypatch.setattr(side_plans, "PLANS_APART_ABOVE", limit)
        folder = tmp_path / str(limit)
        folder.mkdir()
        skeleton = external.externalized(model, folder, "w.data", 1024, side_plans.is_plan)
        written = side_plans.place_plans(model, skeleton, folder, "m.onnx")
        assert bool(written) == apart
        plans = [next(a.s for a in n.attribute if a.name == "engine") for n in skeleton.graph.node]
        assert plans == ([b"", b""] if apart else [bytes([k + 1]) * (length + k) for k in range(2)])
        if not apart:
            assert skeleton.ByteSize() == whole


@pytest.mark.skipif(not installed(RTX), reason="tensorrt_rtx is not installed")
def test_tensorrt_rtx_reads_the_weights_left_in_the_file_and_builds_the_same_plans(
        tmp_path: Path, large_limit: None) -> None:
    backend, reason = load_backend(RTX)
    assert backend is not None, reason
    paths: list[str | None] = []
    real = backend.build

    def build(model: bytes, spec: object, progress: object, path: str | None = None) -> object:
        paths.append(path)
        return real(model, spec, progress, path=path)  # type: ignore[arg-type]

    backend.build = build  # type: ignore[method-assign]
    source = _chain(tmp_path)
    plans = []
    for given, cache in ((str(source), "from-file"), (onnx.load(str(source)), "inline")):
        config = TensorRTConfig(disable_ops=["Sigmoid"], min_subgraph_size=2)
        builder = TensorRTBuilder(backend, EngineCache(tmp_path / cache))
        hybrid = convert(given, config, builder=builder)  # 4 pieces of 2 weights
        assert [e.status for e in hybrid.engines] == [STATUS_BUILT] * 4
        plans.append([e.engine for e in hybrid.engines])
    assert paths == [str(tmp_path / "model.onnx")] * 4 + [None] * 4
    assert all(len(p) > 2 * WIDTH * WIDTH * 4 for p in plans[0])  # full plans hold the weights
    assert plans[0] == plans[1]


_MEMORY = r"""
import sys
import hybridtrt.core.external as external
from benchmarks.rss import PeakRSS, rss
from hybridtrt import TensorRTConfig, convert
from hybridtrt.trt.engine import BuildResult
external.LARGE_ABOVE = 100_000
PLAN = int(sys.argv[2])  # bytes of every plan (0: engines not built)

class FullPlans:  # stands for TensorRT-RTX on a CPU: full plans, the size of their weights
    built, held = 0, 0  # held: the most RSS had grown by when a build began
    def parser_support(self, model):
        return None
    def build(self, name, model, profiles, settings):
        FullPlans.built += 1
        FullPlans.held = max(FullPlans.held, rss() - before)
        return BuildResult(bytes([FullPlans.built]) * PLAN, fingerprint={})

import onnxruntime, hybridtrt.compiler.pipeline  # what convert imports on first use
sampler = PeakRSS(every=0.002)
before = sampler.restart()  # (a first convert here would leave freed pages for the second)
hybrid = convert(sys.argv[1], TensorRTConfig(disable_ops=["Sigmoid"]),
                 builder=FullPlans() if PLAN else None)
grown = sampler.peak() - before
saved = 0
if len(sys.argv) > 3:  # saved there, plans in side files
    import hybridtrt.core.side_plans as side_plans
    side_plans.PLANS_APART_ABOVE = 1 << 20
    start = sampler.restart()
    hybrid.save(sys.argv[3])
    saved = sampler.peak() - start
assert not PLAN or len({e.engine for e in hybrid.engines}) == len(hybrid.engines) == FullPlans.built
print(grown, len(hybrid.engines), FullPlans.held, saved)
"""


def _convert_growth(path: Path, plan: int = 0,
                    saved: Path | None = None) -> tuple[int, int, int, int]:
    """Peak RSS growth of ``convert(path)`` in a fresh process, its engine count, the most RSS
    had grown by when a build began, and the peak growth of a save to ``saved`` (plans in side
    files; 0 when not given); each engine built with a plan of ``plan`` bytes (0: not built)."""
    temporary = path.parent / "tmp"  # where the built plans wait (gone after convert)
    temporary.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYBRIDTRT_BACKEND": "none",
           "TMPDIR": str(temporary)}
    done = subprocess.run([sys.executable, "-c", _MEMORY, str(path), str(plan),
                           *([str(saved)] if saved else [])], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    growth, engines, held, save = done.stdout.split()[-4:]
    return int(growth), int(engines), int(held), int(save)


def test_converting_a_large_model_holds_no_copy_of_its_weights(tmp_path: Path) -> None:
    """Peak RSS growth during ``convert``, in a fresh process: a copy of the weights (the
    loaded model's, the engine subgraphs' or the hybrid model's) would add their size."""
    width, count = 2048, 8  # 128 MiB of weights
    growth, _, _, _ = _convert_growth(_chain(tmp_path, count, batch=1, width=width))
    # one tensor is read at a time (3/8 of the weights, counting the checksum's copies)
    assert growth < 0.75 * count * width * width * 4, f"convert grew RSS by {growth / 2**20:.0f} MiB"


def test_converting_holds_each_plan_once(tmp_path: Path) -> None:
    """Full plans (as TensorRT-RTX makes them without a GPU) are held by their engine nodes
    alone: the engine stage's records and the hybrid model's read them there. A second copy
    (in a record beside the node) would double them: 6 plans for 3 engines at the end of
    rewrite; held once, a plan is read into its node while the others are there (4). Until
    then built plans wait in files: the next engines build with none of them in memory. A
    save to side files copies one plan at a time (a copy in the model written would be 3)."""
    plan = 128 << 20
    saved = tmp_path / "hybrid" / "model.onnx"
    growth, engines, held, save = _convert_growth(_chain(tmp_path, 12, pieces=3), plan, saved)
    assert engines == 3
    assert growth < 5 * plan, f"convert grew RSS by {growth / plan:.2f} plans"
    assert held < plan / 2, f"the last build began with {held / plan:.2f} plans in memory"
    assert save < 2 * plan, f"save grew RSS by {save / plan:.2f} plans"
    assert len(list(saved.parent.glob("*.plan"))) == 3
    assert not list((tmp_path / "tmp").glob("hybridtrt-plans-*"))  # where the plans waited: gone
