"""The engine stage with TensorRT replaced at its narrow interface (tests/fake_tensorrt.py)."""

from __future__ import annotations

import hashlib

import pytest

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.core.partition import Partition
from hybridtrt.compiler.building.refine import bisect_build, parser_resolve
from hybridtrt.trt.engine import BuildResult
from hybridtrt.trt.builder import TensorRTBuilder, default_builder
from hybridtrt.errors import EngineBuildError
from hybridtrt.core.format import STATUS_BUILT, STATUS_NOT_BUILT
from hybridtrt.trt.api import ParserVerdict
from hybridtrt.trt.cache import EngineCache
from tests.fake_tensorrt import FakeBackend
from tests.models import split_chain

RANGE = [Input("x", (1, 4), (2, 4), (4, 4))]


def _builder(tmp_path, **fake):
    backend = FakeBackend(**fake)
    return backend, TensorRTBuilder(backend, EngineCache(tmp_path / "cache"))


def _engines(hybrid):
    return [(e.name, [n.name for n in e.subgraph.node], e.status) for e in hybrid.engines]


def test_every_cluster_gets_a_plan_with_fingerprint_and_profiles(tmp_path):
    backend, builder = _builder(tmp_path)
    hybrid = convert(split_chain(), TensorRTConfig(RANGE, disable_ops=["Sin"]), builder=builder)
    assert _engines(hybrid) == [
        ("tensorrt_engine_0", ["relu1", "add1", "mul1"], STATUS_BUILT),
        ("tensorrt_engine_1", ["relu2", "add2", "mul2"], STATUS_BUILT),
    ]
    engine = hybrid.engines[0]
    assert engine.engine_sha256 == hashlib.sha256(engine.engine).hexdigest()
    assert engine.fingerprint["tensorrt_version"] == "10.99.0"
    assert engine.fingerprint["compute_capability"] == "9.0"
    assert engine.fingerprint["settings_sha256"] == TensorRTConfig(RANGE).settings_hash()
    assert engine.profiles[0]["x"] == {"min": [1, 4], "opt": [2, 4], "max": [4, 4]}
    assert [c[0] for c in backend.calls].count("build") == 2
    assert hybrid.report().engines[0].status == STATUS_BUILT


def test_converting_again_takes_every_engine_from_the_cache(tmp_path):
    backend, builder = _builder(tmp_path)
    config = TensorRTConfig(RANGE, disable_ops=["Sin"])
    first = convert(split_chain(), config, builder=builder)
    again_backend, again = _builder(tmp_path)  # a new process: same cache directory
    second = convert(split_chain(), config, builder=again)
    assert [c for c in again_backend.calls if c[0] == "build"] == []
    assert first.model.SerializeToString() == second.model.SerializeToString()
    convert(split_chain(), TensorRTConfig([Input("x", (1, 4), (2, 4), (8, 4))],
                                          disable_ops=["Sin"]), builder=again)
    assert [c[0] for c in again_backend.calls].count("build") == 2  # a new profile: new keys


def test_stripped_plans_hold_no_weights_and_full_plans_do(tmp_path):
    _, builder = _builder(tmp_path)
    stripped = convert(split_chain(width=64), TensorRTConfig([Input("x", (1, 64), (2, 64), (4, 64))],
                                                             min_subgraph_size=1), builder=builder)
    full = convert(split_chain(width=64), TensorRTConfig([Input("x", (1, 64), (2, 64), (4, 64))],
                                                         min_subgraph_size=1, strip_weights=False),
                   builder=builder)
    weights = 64 * 4  # the float32 weight 'w' of 64 values
    assert len(full.engines[0].engine) >= len(stripped.engines[0].engine) + weights
    assert stripped.engines[0].build_settings["strip_weights"] is True


def test_parser_disagreement_splits_the_cluster_and_is_reported(tmp_path):
    backend, builder = _builder(tmp_path, parser_rejects=["Add"])
    hybrid = convert(split_chain(), TensorRTConfig(RANGE, min_subgraph_size=1, disable_ops=["Sin"]),
                     builder=builder)
    assert [[n.name for n in e.subgraph.node] for e in hybrid.engines] == [
        ["relu1"], ["mul1"], ["relu2"], ["mul2"]]
    report = hybrid.report()
    assert [(d.name, d.op_type) for d in report.disagreements] == [("add1", "Add"), ("add2", "Add")]
    assert report.disagreements[0].reason == "TensorRT's ONNX parser rejects it: no importer for Add"
    outside = {o.name: o.reason for o in report.outside}
    assert outside["add1"].startswith("TensorRT's ONNX parser rejects it")
    assert "TensorRT's ONNX parser rejected 2 node(s)" in report.render()
    assert report.nodes_in_tensorrt == 4


def test_a_failing_cluster_is_bisected_and_the_rest_kept(tmp_path):
    backend, builder = _builder(tmp_path, build_fails=["Mul"])
    hybrid = convert(split_chain(), TensorRTConfig(RANGE, min_subgraph_size=1, disable_ops=["Sin"]),
                     builder=builder)
    assert [[n.name for n in e.subgraph.node] for e in hybrid.engines] == [
        ["relu1"], ["add1"], ["relu2"], ["add2"]]
    assert [e.name for e in hybrid.engines] == [
        "tensorrt_engine_0_0", "tensorrt_engine_0_1", "tensorrt_engine_1_0", "tensorrt_engine_1_1"]
    outside = {o.name: o.reason for o in hybrid.report().outside}
    assert outside["mul1"] == "TensorRT cannot build it: no implementation for Mul"
    assert all(e.status == STATUS_BUILT for e in hybrid.engines)


def test_bisection_leaves_parts_below_min_subgraph_size_to_ort(tmp_path):
    _, builder = _builder(tmp_path, build_fails=["Mul"])
    hybrid = convert(split_chain(), TensorRTConfig(RANGE, min_subgraph_size=2, disable_ops=["Sin"]),
                     builder=builder)
    assert hybrid.engines == ()
    reasons = {o.name: o.reason for o in hybrid.report().outside}
    assert "below min_subgraph_size" in reasons["relu1"]
    assert "no implementation for Mul" in reasons["mul1"]


def test_strict_makes_a_build_failure_an_error(tmp_path):
    _, builder = _builder(tmp_path, build_fails=["Mul"])
    with pytest.raises(EngineBuildError, match="TensorRT could not build tensorrt_engine_0 "
                                                r"\(3 nodes\): no implementation for Mul"):
        convert(split_chain(), TensorRTConfig(RANGE, disable_ops=["Sin"], strict=True), builder=builder)


def test_bisection_finds_the_one_failing_node_in_few_builds():
    nodes = tuple(range(32))
    calls = []

    def build(part: Partition) -> BuildResult:
        calls.append(part.nodes)
        return BuildResult(error="bad node") if 13 in part.nodes else BuildResult(plan=b"p")

    built, rejected = bisect_build(Partition(nodes), build, lambda p: True, False, str)
    assert [r.node for r in rejected] == [13]
    assert sorted(n for p, _ in built for n in p.nodes) == [n for n in nodes if n != 13]
    assert [p.nodes[0] for p, _ in built] == sorted(p.nodes[0] for p, _ in built)
    assert len(calls) <= 2 * 5 + 2  # about two builds per halving
    assert all(list(p) == list(range(p[0], p[-1] + 1)) for p in calls)  # contiguous runs only


def test_parser_resolve_keeps_runs_of_supported_nodes():
    verdict = ParserVerdict(frozenset({0, 1, 3, 4}), {2: "no importer"})
    asked: list[tuple[int, ...]] = []

    def ask(part: Partition) -> ParserVerdict:
        asked.append(part.nodes)
        return verdict if len(part) == 5 else ParserVerdict(frozenset(range(len(part))))

    parts, rejected = parser_resolve(Partition((10, 11, 12, 13, 14)), ask, lambda p: True)
    assert [p.nodes for p in parts] == [(10, 11), (13, 14)]
    assert [(r.node, r.by_parser) for r in rejected] == [(12, True)]
    assert rejected[0].reason == "TensorRT's ONNX parser rejects it: no importer"
    assert asked == [(10, 11, 12, 13, 14), (10, 11), (13, 14)]


def _onnx_tensorrt_parser(bad: set[int]):
    """Answers as onnx-tensorrt does: once one node fails, every subgraph is unsupported, and
    only the failing node is named (``bad`` are model node numbers)."""
    def ask(part: Partition) -> ParserVerdict:
        blamed = {k: "plugin not found" for k, n in enumerate(part.nodes) if n in bad}
        supported = frozenset() if blamed else frozenset(range(len(part)))
        return ParserVerdict(supported, blamed)
    return ask


def test_parser_resolve_asks_again_when_one_node_spoils_every_subgraph():
    # 3 Relu -> NonZero -> Cast -> 3 Relu: the real TensorRT-RTX parser answered like this
    parts, rejected = parser_resolve(Partition(tuple(range(8))), _onnx_tensorrt_parser({3}),
                                     lambda p: True)
    assert [p.nodes for p in parts] == [(0, 1, 2), (4, 5, 6, 7)]
    assert [r.node for r in rejected] == [3]


def test_parser_resolve_halves_a_refusal_that_names_no_node():
    def ask(part: Partition) -> ParserVerdict:
        return ParserVerdict(frozenset() if 5 in part.nodes else frozenset(range(len(part))))

    parts, rejected = parser_resolve(Partition(tuple(range(8))), ask, lambda p: True)
    assert [r.node for r in rejected] == [5]
    assert sorted(n for p in parts for n in p.nodes) == [0, 1, 2, 3, 4, 6, 7]
    assert rejected[0].reason.endswith("unsupported in this TensorRT")


def test_parser_resolve_does_not_ask_about_pieces_too_small_to_build():
    asked: list[tuple[int, ...]] = []

    def ask(part: Partition) -> ParserVerdict:
        asked.append(part.nodes)
        return _onnx_tensorrt_parser({1})(part)

    parts, _ = parser_resolve(Partition(tuple(range(6))), ask, lambda p: len(p) >= 3)
    assert asked == [tuple(range(6)), (2, 3, 4, 5)]
    assert [p.nodes for p in parts] == [(0,), (2, 3, 4, 5)]  # (0,) is the caller's to drop


def test_without_tensorrt_nothing_is_built_and_the_reason_is_kept(tmp_path):
    hybrid = convert(split_chain(), TensorRTConfig(RANGE, disable_ops=["Sin"]))
    assert {e.status for e in hybrid.engines} == {STATUS_NOT_BUILT}
    assert hybrid.engines[0].status_reason.startswith("TensorRT is turned off")
    assert type(default_builder(tmp_path)).__name__ == "NotBuilding"


def test_new_settings_are_validated():
    from hybridtrt.errors import ConfigError

    with pytest.raises(ConfigError, match="hardware_compatibility must be one of"):
        TensorRTConfig(hardware_compatibility="turing")
    with pytest.raises(ConfigError, match="strict must be True or False"):
        TensorRTConfig(strict="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="device_id must be >= 0"):
        TensorRTConfig(device_id=-1)
    settings = TensorRTConfig(hardware_compatibility="ampere_plus", strip_weights=False).build_settings()
    assert settings["hardware_compatibility"] == "ampere_plus" and settings["strip_weights"] is False
