"""Real TensorRT-RTX: its ONNX parser and ahead-of-time builder, which run without a GPU.

CI installs ``tensorrt-rtx-cu13`` so these run on every push. No machine here can execute an
RTX engine (that needs a GPU of compute capability 8.0, 8.6, 8.9 or 12.x), so the runtime part
checks that saved RTX plans fall back to ONNX Runtime with the reason, matching plain ORT.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.converters.registry import REGISTRY, Registry
from hybridtrt.runtime import Config, create_predictor
from hybridtrt.trt.api import BuildSpec, TensorRTFailure
from hybridtrt.trt.backends import load_backend
from hybridtrt.trt.library import RTX, installed
from tests.suites import backend_node_cases, onnx_light_cnns, ort_run, outputs_match, paddleocr_models

BACKEND, REASON = load_backend(RTX) if installed(RTX) else (None, "tensorrt_rtx is not installed")
pytestmark = pytest.mark.skipif(BACKEND is None, reason=f"TensorRT-RTX: {REASON} "
                                                        "(pip install tensorrt-rtx-cu13==1.7.1.116)")

SHAPES = {"det": [(1, 3, 320, 320), (1, 3, 640, 640), (1, 3, 960, 960)],
          "rec": [(1, 3, 48, 160), (1, 3, 48, 320), (1, 3, 48, 640)],
          "cls": [(1, 3, 48, 192), (1, 3, 48, 192), (1, 3, 48, 192)]}


def rtx(**settings: object) -> TensorRTConfig:
    return TensorRTConfig(backend=RTX, **settings)  # type: ignore[arg-type]


# NonZero's output shape follows the values of x: with warm-up data they are known, and the
# nodes after it may sit in an engine (without, they stay in ONNX Runtime).
KNOWN_X = [Input("x", warmup_data=[np.ones((2, 3), np.float32)])]


def nonzero_chain() -> onnx.ModelProto:
    """3 Relu -> NonZero -> Cast -> 3 Relu: RTX has no NonZero plugin."""
    nodes, previous = [], "x"
    for k in range(3):
        nodes.append(helper.make_node("Relu", [previous], [f"a{k}"], name=f"relu_a{k}"))
        previous = f"a{k}"
    nodes.append(helper.make_node("NonZero", [previous], ["nz"], name="nonzero"))
    nodes.append(helper.make_node("Cast", ["nz"], ["c"], name="cast", to=TensorProto.FLOAT))
    previous = "c"
    for k in range(3):
        nodes.append(helper.make_node("Relu", [previous], [f"b{k}"], name=f"relu_b{k}"))
        previous = f"b{k}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [2, "n"])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def test_the_parser_answers_without_crashing_and_names_the_failing_node():
    assert BACKEND is not None
    verdict = BACKEND.parse_support(nonzero_chain().SerializeToString())
    assert 3 in verdict.reasons and "NonZero" in verdict.reasons[3]
    assert verdict.supported == frozenset()  # onnx-tensorrt's all-or-nothing answer


def test_one_node_the_parser_refuses_keeps_the_rest_of_its_cluster_in_tensorrt(tmp_path, monkeypatch):
    monkeypatch.setattr(Registry, "absence", lambda self, rule: "")  # rules that miss it
    hybrid = convert(nonzero_chain(), rtx(min_subgraph_size=1, cache_dir=tmp_path, inputs=KNOWN_X))
    built = [(e.status, [n.op_type for n in e.subgraph.node]) for e in hybrid.engines]
    assert built == [("built", ["Relu"] * 3), ("built", ["Cast"] + ["Relu"] * 3)]
    outside = {o.op_type: o.reason for o in hybrid.report().outside}
    assert list(outside) == ["NonZero"]
    assert outside["NonZero"].startswith("TensorRT's ONNX parser rejects it: ")
    assert "NonZero plugin" in outside["NonZero"]
    fingerprint = hybrid.engines[0].fingerprint
    assert fingerprint["library"] == RTX and fingerprint["tensorrt_version"].startswith("1.")
    assert fingerprint["compute_capability"] == "8.0,8.6,8.9,12.0"
    assert fingerprint["stripped"] is False  # weight-stripped plans need a GPU to build


def test_the_rtx_rules_keep_what_rtx_lacks_out_and_the_report_names_the_library(tmp_path):
    hybrid = convert(nonzero_chain(), rtx(min_subgraph_size=1, cache_dir=tmp_path, inputs=KNOWN_X))
    outside = {o.op_type: o.reason for o in hybrid.report().outside}
    assert outside == {"NonZero": "TensorRT-RTX lacks NonZero: its parser has no NonZero plugin "
                                  "(measured with 1.7.1)"}
    assert "fp32, built with TensorRT-RTX 1.7.1.116 for 8.0, 8.6, 8.9, 12.0" in hybrid.report().render()
    plain = convert(nonzero_chain(), TensorRTConfig(min_subgraph_size=1))  # TensorRT's rules
    assert "NonZero" not in {o.op_type for o in plain.report().outside}


def test_without_warmup_data_what_reads_nonzero_stays_in_onnx_runtime_and_runs(tmp_path):
    model = nonzero_chain()
    hybrid = convert(model, rtx(min_subgraph_size=1, cache_dir=tmp_path))
    assert [[n.op_type for n in e.subgraph.node] for e in hybrid.engines] == [["Relu"] * 3]
    outside = {o.name: o.reason for o in hybrid.report().outside}
    assert outside["cast"].startswith("a tensor at its cluster's edge has a shape set by values")
    saved = hybrid.save(tmp_path / "nz.onnx")
    for x in (np.ones((2, 3), np.float32), np.array([[0, 1, 0], [2, 0, 0]], np.float32)):
        got = create_predictor(Config(saved)).run(None, {"x": x})
        assert outputs_match(got, ort_run(model, {"x": x}), 1e-6, 0)


def test_target_compute_capabilities_are_built_for_and_recorded(tmp_path):
    hybrid = convert(nonzero_chain(), rtx(min_subgraph_size=1, cache_dir=tmp_path,
                                          target_compute_capabilities=["8.9", "8.6"]))
    assert {e.fingerprint["compute_capability"] for e in hybrid.engines} == {"8.6,8.9"}
    assert all(e.engine for e in hybrid.engines)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_paddleocr_models_build_whole(tmp_path, precision):
    for kind, path in paddleocr_models().items():
        model = onnx.load(str(path))
        name = model.graph.input[0].name
        # accuracy_check=False: the engines as the rules type them (on these random warm-up
        # inputs the accuracy guard keeps more FP32, which would hide what RTX builds in 16 bit)
        hybrid = convert(model, rtx(inputs=[Input(name, *SHAPES[kind])], precision_mode=precision,
                                    cache_dir=tmp_path, accuracy_check=False))
        report = hybrid.report()
        assert [e.status for e in hybrid.engines] == ["built"], (kind, report.render())
        assert report.nodes_in_tensorrt == report.nodes, (kind, report.render())
        kept = {tuple(k[1:]) for e in hybrid.engines for k in e.precision["fp32_nodes"]}
        deconvolutions = sum(n.op_type == "ConvTranspose" for n in model.graph.node)
        if precision == "bf16" and deconvolutions:  # det: RTX builds no BF16 deconvolution
            assert {k for k in kept if k[0] == "ConvTranspose"} == {
                ("ConvTranspose", "TensorRT-RTX cannot build a BF16 deconvolution (its Myelin "
                                  "compiler cannot type it; measured with 1.7.1 on PP-OCR det)")}
        else:
            assert "ConvTranspose" not in {k[0] for k in kept}


def test_the_onnx_wheels_cnns_build_whole(tmp_path):
    names = []
    for case in onnx_light_cnns():
        hybrid = convert(case.model, rtx(min_subgraph_size=1, cache_dir=tmp_path))
        assert [e.status for e in hybrid.engines] == ["built"], case.name
        names.append(case.name)
    assert len(names) == 9


def test_reconverting_takes_the_engine_cache_and_gives_the_same_bytes(tmp_path, caplog):
    path = paddleocr_models()["cls"]
    config = rtx(inputs=[Input("x", *SHAPES["cls"])], cache_dir=tmp_path / "cache")
    first = convert(str(path), config).save(tmp_path / "a.onnx")
    with caplog.at_level(logging.INFO, logger="hybridtrt"):
        second = convert(str(path), config).save(tmp_path / "b.onnx")
    assert "taken from the engine cache" in caplog.text
    assert Path(first).read_bytes() == Path(second).read_bytes()


def test_saved_rtx_plans_fall_back_to_onnx_runtime_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRIDTRT_BACKEND", RTX)
    model = onnx.load(str(paddleocr_models()["cls"]))
    saved = convert(model, rtx(inputs=[Input("x", *SHAPES["cls"])], cache_dir=tmp_path)).save(
        tmp_path / "cls.onnx")
    predictor = create_predictor(Config(saved))
    assert [s.reason for s in predictor.engine_status()] == [
        "TensorRT-RTX needs a GPU; the predictor runs on the CPU"]
    x = np.random.default_rng(0).random((1, 3, 48, 192), dtype=np.float32)
    assert outputs_match(predictor.run(None, {"x": x}), ort_run(model, {"x": x}), 1e-4, 1e-5)


def test_what_the_rtx_rules_keep_out_the_real_library_refuses():
    """Each op the registry marks absent in TensorRT-RTX really fails there on its backend case
    (the rule goes stale, and this fails, when RTX gains it). NonMaxSuppression's cases feed
    its shape input from outside; docs/RTX_AGREEMENT.md has its build failure as a constant."""
    assert BACKEND is not None
    absent = {rule.op_type for rules in REGISTRY.op_types().values() for rule in rules
              if dict(rule.absent_in).get(RTX)}
    at_parse = {"NonZero": "test_nonzero_example", "RoiAlign": "test_roialign_aligned_false",
                "DeformConv": "test_deform_conv_with_mask_bias"}
    at_build = {"Attention": "test_attention_4d"}
    assert absent == set(at_parse) | set(at_build) | {"NonMaxSuppression"}
    wanted = set(at_parse.values()) | set(at_build.values())
    models = {c.name: c.model.SerializeToString() for c in backend_node_cases() if c.name in wanted}
    for op, name in at_parse.items():
        verdict = BACKEND.parse_support(models[name])
        assert verdict.supported == frozenset() and verdict.reasons, (op, verdict)
        assert "plugin" in " ".join(verdict.reasons.values()).lower(), (op, verdict.reasons)
    spec = BuildSpec(profiles=(), workspace_size=1 << 28, optimization_level=3,
                     strip_weights=False, compute_capabilities=("8.9",))
    for op, name in at_build.items():
        assert len(BACKEND.parse_support(models[name]).supported) == 1, op  # parses...
        with pytest.raises(TensorRTFailure):  # ...and fails to build
            BACKEND.build(models[name], spec, lambda step: None)


def attention_between_relus() -> onnx.ModelProto:
    """Relu -> Attention -> Relu -> Relu on 4-D tensors: RTX parses Attention, cannot build it.

    (Q, K and V are distinct tensors: with one tensor as all three, RTX 1.7.1's builder
    segfaults; the RTX rules keep Attention out of its engines anyway.)"""
    def value(name: str, seq: int) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 2, seq, 8])

    nodes = [helper.make_node("Relu", [n], [f"{n}_r"], name=f"relu_{n}") for n in ("q", "k", "v")]
    nodes += [helper.make_node("Attention", ["q_r", "k_r", "v_r"], ["a"], name="attention"),
              helper.make_node("Relu", ["a"], ["b"], name="relu_b"),
              helper.make_node("Relu", ["b"], ["y"], name="relu_y")]
    graph = helper.make_graph(nodes, "attn", [value("q", 4), value("k", 6), value("v", 6)],
                              [value("y", 4)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)], ir_version=10)


def test_a_node_the_real_builder_refuses_is_bisected_out_and_the_rest_is_built(tmp_path, monkeypatch):
    monkeypatch.setattr(Registry, "absence", lambda self, rule: "")  # rules that miss it
    model = attention_between_relus()
    hybrid = convert(model, rtx(min_subgraph_size=1, cache_dir=tmp_path))
    assert [(e.status, [n.op_type for n in e.subgraph.node]) for e in hybrid.engines] == [
        ("built", ["Relu"] * 3), ("built", ["Relu", "Relu"])]
    outside = {o.op_type: o.reason for o in hybrid.report().outside}
    assert list(outside) == ["Attention"]
    assert outside["Attention"].startswith("TensorRT cannot build it: "), outside
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((1, 2, seq, 8)).astype(np.float32)
             for n, seq in (("q", 4), ("k", 6), ("v", 6))}
    saved = hybrid.save(tmp_path / "attn.onnx")
    got = create_predictor(Config(saved)).run(None, feeds)
    assert outputs_match(got, ort_run(model, feeds), 1e-4, 1e-5)


def test_rtx_builds_write_no_timing_cache_and_name_a_missing_cuda_python(tmp_path, monkeypatch):
    convert(nonzero_chain(), rtx(min_subgraph_size=1, cache_dir=tmp_path, inputs=KNOWN_X))
    assert len(list((tmp_path / "engines").iterdir())) == 2  # both plans were cached...
    assert not list(tmp_path.glob("timing/*"))  # ...and no timing cache: RTX has none
    import builtins

    real_import = builtins.__import__

    def without_cuda_python(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("cuda"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_cuda_python)
    assert BACKEND is not None
    reason = type(BACKEND)().unusable_reason("cuda", 0)  # a fresh backend: no cached GPU answer
    assert "cuda-python is not installed" in reason and "pip install" in reason, reason
    assert BACKEND.build_unusable_reason(0) == ""  # RTX still builds, for its default targets
