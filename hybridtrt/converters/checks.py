"""Reusable check builders and dtype sets that the per-domain op rules are written with."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from hybridtrt.converters.registry import (
    ALL_TRT_TYPES,
    REGISTRY,
    Check,
    NodeContext,
    OpRule,
    Registry,
    Verdict,
    dtype_name,
)

__all__ = [
    "BOOL_ONLY",
    "CAST_TYPES",
    "CONSTANT_TYPES",
    "FLOATS",
    "FP32_FP16",
    "INT64_ONLY",
    "INTS",
    "NUMERIC",
    "NUMERIC_BOOL",
    "QUANTIZED",
    "TRT_MIN_OPSET",
    "attr_equals",
    "attr_in",
    "attr_value",
    "constant_input",
    "constant_input_where",
    "define",
    "first_opset",
    "input_dtype",
    "input_is_constant",
    "input_rank_in",
    "input_value",
    "max_input_rank",
    "no_attr",
    "no_input",
    "no_output",
    "static_dims",
    "subgraphs_supported",
    "value_shaped",
]

# The oldest opset that TensorRT 10's ONNX parser documents support for.
TRT_MIN_OPSET = 9


def _pick(*types: int) -> frozenset[int]:
    chosen = frozenset(types)
    assert chosen <= ALL_TRT_TYPES, "a dtype set may only hold TensorRT types"
    return chosen


FLOATS = _pick(TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16)
FP32_FP16 = _pick(TensorProto.FLOAT, TensorProto.FLOAT16)
INTS = _pick(TensorProto.INT32, TensorProto.INT64)
INT64_ONLY = _pick(TensorProto.INT64)
BOOL_ONLY = _pick(TensorProto.BOOL)
NUMERIC = FLOATS | INTS
NUMERIC_BOOL = NUMERIC | BOOL_ONLY
CAST_TYPES = NUMERIC_BOOL | _pick(TensorProto.UINT8)
# Low-precision types that exist only between a QuantizeLinear and a DequantizeLinear.
QUANTIZED = _pick(
    TensorProto.INT8, TensorProto.FLOAT8E4M3FN, TensorProto.INT4, TensorProto.FLOAT4E2M1
)
CONSTANT_TYPES = NUMERIC_BOOL | _pick(
    TensorProto.FLOAT8E4M3FN, TensorProto.INT4, TensorProto.FLOAT4E2M1
)


def define(
    op_types: str | Sequence[str],
    *,
    min_opset: int | None = None,
    registry: Registry | None = None,
    **fields: Any,
) -> None:
    """Register one ``OpRule`` per op type; ``min_opset`` defaults to ``first_opset(op_type)``."""
    names = [op_types] if isinstance(op_types, str) else list(op_types)
    for name in names:
        opset = min_opset if min_opset is not None else first_opset(name)
        target = registry if registry is not None else REGISTRY
        target.register(OpRule(op_type=name, min_opset=opset, **fields))


def value_shaped(
    op_types: str | Sequence[str], inputs: Sequence[int], *, registry: Registry | None = None
) -> None:
    """Declare that the values of ``inputs`` of each op type set the shape of an output.

    Shape tensors of a rule (``shape_inputs``) need no declaration; this is for ordinary
    tensors whose values decide shapes (NonZero's input) and for ops without a rule.
    """
    names = [op_types] if isinstance(op_types, str) else list(op_types)
    target = registry if registry is not None else REGISTRY
    for name in names:
        target.declare_value_shaped(name, inputs)


def first_opset(op_type: str) -> int:
    """The first opset where TensorRT can meet ``op_type``: its ONNX debut, but never below 9."""
    return max(TRT_MIN_OPSET, _onnx_debuts().get(op_type, TRT_MIN_OPSET))


@functools.lru_cache(maxsize=1)
def _onnx_debuts() -> dict[str, int]:
    debuts: dict[str, int] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.domain == "":
            old = debuts.get(schema.name, schema.since_version)
            debuts[schema.name] = min(old, schema.since_version)
    return debuts


def attr_value(ctx: NodeContext, name: str, default: Any = None) -> Any:
    """``ctx.attr`` with byte strings decoded, so string attributes compare with ``str``."""
    value = ctx.attr(name, default)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
    return value


def _present(ctx: NodeContext, index: int) -> bool:
    return index < len(ctx.node.input) and bool(ctx.node.input[index])


def input_value(ctx: NodeContext, index: int) -> np.ndarray | None:
    """The constant value of input ``index``, or None when it is omitted or computed."""
    if not _present(ctx, index):
        return None
    value = ctx.constant_value(index)
    return None if value is None else np.asarray(value)


def input_is_constant(ctx: NodeContext, index: int) -> bool:
    """Whether input ``index`` is an initializer or Constant output (False when omitted)."""
    if not _present(ctx, index):
        return False
    return ctx.input(index).is_constant or ctx.constant_value(index) is not None


def constant_input(index: int, what: str) -> Check:
    """Input ``index`` (named ``what``), when given, must be an initializer or Constant output."""

    def check(ctx: NodeContext) -> Verdict:
        if input_is_constant(ctx, index) or not _present(ctx, index):
            return Verdict.yes()
        return Verdict.no(
            f"input {index} '{what}' of {ctx.node.op_type} must be a constant "
            "(initializer or Constant) for TensorRT"
        )

    return check


def constant_input_where(
    index: int, what: str, test: Callable[[np.ndarray], bool], requirement: str
) -> Check:
    """Input ``index``, when given, must be constant and its value must pass ``test``.

    ``requirement`` completes "input 2 'training_mode' of Dropout must ...".
    """
    is_constant = constant_input(index, what)

    def check(ctx: NodeContext) -> Verdict:
        verdict = is_constant(ctx)
        if not verdict or not _present(ctx, index):
            return verdict
        value = input_value(ctx, index)
        if value is None or test(value):
            return Verdict.yes()
        return Verdict.no(f"input {index} '{what}' of {ctx.node.op_type} must {requirement}")

    return check


def attr_in(name: str, allowed: Collection[Any], default: Any = None) -> Check:
    """Attribute ``name`` (``default`` when absent) must be one of ``allowed``."""

    def check(ctx: NodeContext) -> Verdict:
        value = attr_value(ctx, name, default)
        if value in allowed:
            return Verdict.yes()
        choices = ", ".join(repr(a) for a in allowed)
        return Verdict.no(
            f"attribute {name}={value!r} of {ctx.node.op_type} is not supported by TensorRT "
            f"(it takes {choices})"
        )

    return check


def attr_equals(name: str, expected: Any, default: Any = None) -> Check:
    """Attribute ``name`` (``default`` when absent) must equal ``expected``."""

    def check(ctx: NodeContext) -> Verdict:
        value = attr_value(ctx, name, default)
        if value == expected:
            return Verdict.yes()
        return Verdict.no(
            f"attribute {name} of {ctx.node.op_type} must be {expected!r} for TensorRT, "
            f"not {value!r}"
        )

    return check


def no_attr(name: str) -> Check:
    """Attribute ``name`` must not be set at all."""

    def check(ctx: NodeContext) -> Verdict:
        if all(a.name != name for a in ctx.node.attribute):
            return Verdict.yes()
        return Verdict.no(f"attribute '{name}' of {ctx.node.op_type} is not supported by TensorRT")

    return check


def no_input(index: int, what: str) -> Check:
    """Optional input ``index`` must be omitted."""

    def check(ctx: NodeContext) -> Verdict:
        if not _present(ctx, index):
            return Verdict.yes()
        return Verdict.no(
            f"input {index} '{what}' of {ctx.node.op_type} is not supported by TensorRT; "
            "leave it out"
        )

    return check


def no_output(index: int, what: str) -> Check:
    """Optional output ``index`` must be omitted (TensorRT does not compute it)."""

    def check(ctx: NodeContext) -> Verdict:
        outputs = ctx.node.output
        if index >= len(outputs) or not outputs[index]:
            return Verdict.yes()
        return Verdict.no(
            f"output {index} '{what}' of {ctx.node.op_type} is not computed by TensorRT; "
            "only nodes that leave it out can run there"
        )

    return check


def input_dtype(index: int, what: str, allowed: frozenset[int]) -> Check:
    """Input ``index``, when given and typed, must have one of the ``allowed`` dtypes."""

    def check(ctx: NodeContext) -> Verdict:
        info = ctx.input(index)
        if not _present(ctx, index) or info.dtype is None or info.dtype in allowed:
            return Verdict.yes()
        names = ", ".join(sorted(dtype_name(t) for t in allowed))
        return Verdict.no(
            f"input {index} '{what}' of {ctx.node.op_type} has dtype {dtype_name(info.dtype)}; "
            f"TensorRT takes {names}"
        )

    return check


def input_rank_in(index: int, what: str, ranks: Collection[int]) -> Check:
    """Input ``index``, when its rank is known, must have one of ``ranks``."""

    def check(ctx: NodeContext) -> Verdict:
        rank = ctx.input(index).rank if _present(ctx, index) else None
        if rank is None or rank in ranks:
            return Verdict.yes()
        wanted = _rank_words(ranks)
        return Verdict.no(
            f"input {index} '{what}' of {ctx.node.op_type} has rank {rank}; "
            f"TensorRT takes rank {wanted}"
        )

    return check


def _rank_words(ranks: Collection[int]) -> str:
    ordered = sorted(ranks)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]} to {ordered[-1]}"
    return " or ".join(str(r) for r in ordered)


def max_input_rank(limit: int, index: int = 0, what: str = "input") -> Check:
    """Input ``index``, when its rank is known, must have at most ``limit`` dims."""

    def check(ctx: NodeContext) -> Verdict:
        rank = ctx.input(index).rank if _present(ctx, index) else None
        if rank is None or rank <= limit:
            return Verdict.yes()
        return Verdict.no(
            f"input {index} '{what}' of {ctx.node.op_type} has rank {rank}; "
            f"TensorRT takes at most {limit}"
        )

    return check


def static_dims(index: int, what: str) -> Check:
    """Every dim of input ``index`` must be a known number (no symbolic or unknown dims)."""

    def check(ctx: NodeContext) -> Verdict:
        shape = ctx.input(index).shape
        if shape is not None and all(isinstance(d, int) for d in shape):
            return Verdict.yes()
        shown = "unknown" if shape is None else str(list(shape))
        return Verdict.no(
            f"input {index} '{what}' of {ctx.node.op_type} must have a fixed shape for "
            f"TensorRT (its shape is {shown})"
        )

    return check


def subgraphs_supported() -> Check:
    """Every graph attribute (If branches, Loop/Scan bodies) must be supported as a whole."""

    def check(ctx: NodeContext) -> Verdict:
        for attribute in ctx.node.attribute:
            graphs = list(attribute.graphs)
            if attribute.type == onnx.AttributeProto.GRAPH:
                graphs = [attribute.g]
            for graph in graphs:
                verdict = ctx.subgraph_verdict(graph)
                if not verdict:
                    return Verdict.no(
                        f"the {attribute.name} of {ctx.node.op_type} cannot run in TensorRT: "
                        f"{verdict.reason}"
                    )
        return Verdict.yes()

    return check
