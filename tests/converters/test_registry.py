"""The registry mechanics (records, opsets, dtypes, combinators) and the filled global REGISTRY."""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx import TensorProto as T
from onnx.helper import make_node

import hybridtrt.converters as converters
from hybridtrt.converters.checks import FLOATS, define, value_shaped
from hybridtrt.converters.registry import (
    ALL_TRT_TYPES,
    Check,
    OpRule,
    Registry,
    Verdict,
    all_of,
    any_of,
    rule,
)
from hybridtrt.converters.testing import FakeContext, judge
from hybridtrt.errors import InternalError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "OPERATORS.md"


def _yes(_: object) -> Verdict:
    return Verdict.yes()


def _no(reason: str) -> Check:
    return lambda _: Verdict.no(reason)


def test_duplicate_registration_raises() -> None:
    registry = Registry()
    registry.register(OpRule("Foo", min_opset=9))
    with pytest.raises(InternalError, match=r"two TensorRT rules for ai.onnx::Foo"):
        registry.register(OpRule("Foo", min_opset=13))


def test_disjoint_opset_ranges_coexist_and_find_picks_the_covering_one() -> None:
    registry = Registry()
    old = registry.register(OpRule("Foo", min_opset=9, max_opset=12))
    new = registry.register(OpRule("Foo", min_opset=13))
    assert registry.find("Foo", "", 11) is old
    assert registry.find("Foo", "ai.onnx", 17) is new
    assert registry.find("Foo", "", 7) is old  # nearest rule, so its reason can be shown
    assert registry.find("Bar", "", 17) is None


def test_value_shaped_inputs_join_the_rule_and_the_declaration() -> None:
    registry = Registry()
    registry.register(OpRule("Foo", min_opset=9, max_opset=12, shape_inputs=(1,)))
    value_shaped("Foo", (0,), registry=registry)
    value_shaped("Bar", (2, 1), registry=registry)
    assert registry.value_shaped_inputs("Foo", "", 11) == (0, 1)
    assert registry.value_shaped_inputs("Foo", "", 13) == (0,)  # no rule covers opset 13
    assert registry.for_library("tensorrt_rtx").value_shaped_inputs("Bar", "ai.onnx", 1) == (1, 2)
    assert registry.value_shaped_inputs("Baz", "", 11) == ()
    with pytest.raises(InternalError, match=r"value-shaped inputs of ai.onnx::Bar"):
        value_shaped("Bar", (0,), registry=registry)


def test_rule_decorator_registers_each_op_type() -> None:
    registry = Registry()
    rule(["A", "B"], registry=registry, dtypes=FLOATS)(_yes)
    assert len(registry) == 2 and registry.rules_for("B")[0].dtypes == FLOATS


def test_define_defaults_min_opset_to_the_onnx_debut_but_not_below_9() -> None:
    registry = Registry()
    define(("Gelu", "Relu", "NotAnOnnxOp"), registry=registry)
    assert [registry.rules_for(op)[0].min_opset for op in ("Gelu", "Relu", "NotAnOnnxOp")] == [
        20,
        9,
        9,
    ]


@pytest.mark.parametrize(
    ("opset", "supported", "reason"),
    [
        (8, False, "Foo at opset 8 is outside the supported opsets 9..12"),
        (9, True, ""),
        (12, True, ""),
        (13, False, "Foo at opset 13 is outside the supported opsets 9..12"),
    ],
)
def test_opset_range(opset: int, supported: bool, reason: str) -> None:
    registry = Registry()
    registry.register(OpRule("Foo", min_opset=9, max_opset=12))
    ctx = FakeContext.of(make_node("Foo", ["x"], ["y"]), opset=opset)
    assert judge(ctx, registry) == Verdict(supported, reason)


_RULE = OpRule(
    "Foo",
    dtypes=frozenset({T.FLOAT}),
    shape_inputs=(1,),
    output_dtypes=frozenset({T.BOOL}),
)


@pytest.mark.parametrize(
    ("rule_", "dtypes", "reason"),
    [
        (_RULE, {"x": T.INT32}, "input 0 ('x') has dtype int32; Foo takes float32"),
        (_RULE, {"y": T.FLOAT}, "output 0 ('y') has dtype float32; Foo gives bool"),
        (_RULE, {"s": T.INT64, "y": T.BOOL}, ""),  # shape inputs skip the dtype check
        (_RULE, {"x": None, "y": None}, ""),  # unknown dtypes pass
        (
            OpRule("Foo", dtypes=frozenset({T.FLOAT})),
            {"s": T.INT64, "y": T.FLOAT},
            "input 1 ('s') has dtype int64; Foo takes float32",
        ),
        (
            OpRule("Foo", dtypes=frozenset({T.FLOAT}), typed_inputs=(0,)),
            {"s": T.BOOL, "y": T.FLOAT},
            "",
        ),
        (
            OpRule("Foo", dtypes=frozenset({T.FLOAT}), typed_inputs=(1,)),
            {"s": T.BOOL, "y": T.FLOAT},
            "input 1 ('s') has dtype bool; Foo takes float32",
        ),
    ],
)
def test_dtype_reasons(rule_: OpRule, dtypes: dict[str, int], reason: str) -> None:
    ctx = FakeContext.of(make_node("Foo", ["x", "s"], ["y"]), dtypes={"y": int(T.BOOL), **dtypes})
    assert rule_.judge(ctx) == Verdict(not reason, reason)


def test_custom_check_runs_after_dtypes() -> None:
    ctx = FakeContext.of(make_node("Foo", ["x"], ["y"]), dtype=T.INT32)
    assert OpRule("Foo", check=_no("nope")).judge(ctx) == Verdict.no("nope")
    assert OpRule("Foo", dtypes=FLOATS, check=_no("nope")).judge(ctx).reason.startswith("input 0")


def test_all_of_stops_at_the_first_failure() -> None:
    ctx = FakeContext.of(make_node("Foo", [], []))
    assert all_of(_yes, _no("first"), _no("second"))(ctx) == Verdict.no("first")
    assert all_of(_yes, _yes)(ctx) == Verdict.yes()
    assert all_of()(ctx) == Verdict.yes()


def test_any_of_passes_on_one_and_joins_all_reasons() -> None:
    ctx = FakeContext.of(make_node("Foo", [], []))
    assert any_of(_no("a"), _yes)(ctx) == Verdict.yes()
    assert any_of(_no("a"), _no("b"))(ctx) == Verdict.no("a and b")


def test_global_registry_is_filled_on_import() -> None:
    assert len(converters.REGISTRY) == 158
    rules = [r for rs in converters.REGISTRY.op_types().values() for r in rs]
    assert all(r.domain == "" for r in rules)
    assert all(r.dtypes is None or r.dtypes <= ALL_TRT_TYPES for r in rules)
    assert all(r.output_dtypes is None or r.output_dtypes <= ALL_TRT_TYPES for r in rules)
    assert all(not set(r.typed_inputs or ()) & set(r.shape_inputs) for r in rules)
    older = {"And": 7, "Or": 7, "Xor": 7, "Not": 1}  # unchanged since, measured to parse
    assert all(r.min_opset >= older.get(r.op_type, 9) and r.trt_versions == (10, 11) for r in rules)


@pytest.mark.parametrize("op_type", ["BitShift", "Unique", "SequenceAt", "DynamicQuantizeLinear"])
def test_unsupported_ops_have_no_rule(op_type: str) -> None:
    assert converters.REGISTRY.rules_for(op_type) == ()


def test_docs_table_is_current() -> None:
    assert DOCS.read_text() == converters.markdown_table(), (
        "docs/OPERATORS.md is stale: run `python -m hybridtrt.converters > docs/OPERATORS.md`"
    )


def test_support_table_rows() -> None:
    rows = {r["op"] + "@" + r["opsets"]: r for r in converters.support_table()}
    assert rows["Resize@10"]["shape_inputs"] == "1 (scales)"
    assert rows["Resize@11+"]["shape_inputs"] == "2 (scales), 3 (sizes)"
    assert rows["Equal@9+"]["output_dtypes"] == "bool"
    assert rows["EyeLike@9+"]["dynamic_shapes"] == "no"
    assert rows["Squeeze@9+"]["restrictions"] == "An axes input must be a constant."
