"""The one registry that decides which ONNX nodes TensorRT can run, each answer with a reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import onnx
from onnx import TensorProto

from hybridtrt.errors import InternalError

__all__ = [
    "ALL_TRT_TYPES",
    "Check",
    "NodeContext",
    "OpRule",
    "REGISTRY",
    "Registry",
    "TensorInfo",
    "Verdict",
    "all_of",
    "any_of",
    "attribute_value",
    "dtype_name",
    "rule",
]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether TensorRT can run a node, and why (the reason is empty when it can)."""

    supported: bool
    reason: str = ""

    @staticmethod
    def yes() -> Verdict:
        return _YES

    @staticmethod
    def no(reason: str) -> Verdict:
        return Verdict(False, reason)

    def __bool__(self) -> bool:
        return self.supported


_YES = Verdict(True, "")


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """What is known of one tensor before running the model.

    Attributes:
        name: Tensor name ("" for an omitted optional input).
        dtype: ONNX ``TensorProto`` element type, or None when unknown or not a tensor.
        shape: Dims (int for known, str for symbolic, None for unknown), or None when the rank
            is unknown.
        is_constant: True for initializers and outputs of ``Constant`` nodes.
        kind: The value's type: ``"tensor_type"``, ``"sequence_type"``, ``"optional_type"``...
            (``""`` when unknown).
    """

    name: str
    dtype: int | None = None
    shape: tuple[int | str | None, ...] | None = None
    is_constant: bool = False
    kind: str = ""

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)


class NodeContext(Protocol):
    """What a rule may ask about the node it judges (implemented by the compiler)."""

    @property
    def node(self) -> onnx.NodeProto: ...

    @property
    def opset(self) -> int:
        """The opset version of the node's domain."""
        ...

    def input(self, index: int) -> TensorInfo:
        """Input ``index``; an absent or omitted optional input has name ""."""
        ...

    def output(self, index: int) -> TensorInfo: ...

    def constant_value(self, index: int) -> np.ndarray | None:
        """The value of input ``index`` when it is an initializer or a Constant output."""
        ...

    def attr(self, name: str, default: Any = None) -> Any:
        """The node attribute ``name`` as a Python value (``onnx.helper.get_attribute_value``)."""
        ...

    def subgraph_verdict(self, graph: onnx.GraphProto) -> Verdict:
        """Whether every node of a control-flow body is supported (first failure as reason)."""
        ...


Check = Callable[[NodeContext], Verdict]

# Element types that exist in TensorRT 10/11 networks (no double, no strings, no complex,
# no unsigned types wider than 8 bits).
ALL_TRT_TYPES: frozenset[int] = frozenset(
    {
        TensorProto.FLOAT,
        TensorProto.FLOAT16,
        TensorProto.BFLOAT16,
        TensorProto.INT32,
        TensorProto.INT64,
        TensorProto.INT8,
        TensorProto.UINT8,
        TensorProto.BOOL,
        TensorProto.FLOAT8E4M3FN,
        TensorProto.INT4,
        TensorProto.FLOAT4E2M1,
    }
)


def attribute_value(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """A node attribute as a Python value (``onnx.helper.get_attribute_value``), or ``default``."""
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def dtype_name(dtype: int | None) -> str:
    """``TensorProto.FLOAT`` -> ``"float32"``-style names used in reasons and reports."""
    if dtype is None:
        return "unknown"
    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(dtype))
    except (KeyError, ValueError, TypeError):
        return TensorProto.DataType.Name(dtype).lower()


@dataclasses.dataclass(frozen=True)
class OpRule:
    """One ONNX op as TensorRT's ONNX parser takes it.

    Attributes:
        op_type: ONNX op type.
        domain: ONNX domain ("" is the default domain).
        min_opset: First opset of ``domain`` the rule covers.
        max_opset: Last opset covered, or None for every later one.
        dtypes: Element types allowed for the typed inputs and all outputs; None skips the check.
        typed_inputs: Indices of inputs whose dtype is checked against ``dtypes``; None means every
            input that is not in ``shape_inputs``.
        shape_inputs: Inputs that TensorRT consumes as shape tensors (host-side values that decide
            output shapes): such a tensor must be computed inside the engine or be constant.
            They are value-shaped inputs too (``Registry.value_shaped_inputs``).
        check: Extra check of attributes, ranks or constant inputs.
        dynamic_shapes: Whether the op works with dynamic (profile) input shapes.
        trt_versions: TensorRT major versions that support the op.
        notes: Restrictions in words, for documentation.
        output_dtypes: Element types allowed for the outputs when they differ from ``dtypes``
            (comparisons give bool, Shape gives int64); None means ``dtypes``.
        absent_in: ``(library, reason)`` pairs: TensorRT libraries (``tensorrt_rtx``) whose
            parser or builder lacks the op, and why.
        fp32_in: ``(library, precision, reason)``: the op stays FP32 in engines of that
            precision (``"fp16"``, ``"bf16"``) built by that library.
        checks_in: ``(library, check)``: extra checks for that library only.
    """

    op_type: str
    domain: str = ""
    min_opset: int = 1
    max_opset: int | None = None
    dtypes: frozenset[int] | None = None
    typed_inputs: tuple[int, ...] | None = None
    shape_inputs: tuple[int, ...] = ()
    check: Check | None = None
    dynamic_shapes: bool = True
    trt_versions: tuple[int, ...] = (10, 11)
    notes: str = ""
    output_dtypes: frozenset[int] | None = None
    absent_in: tuple[tuple[str, str], ...] = ()
    fp32_in: tuple[tuple[str, str, str], ...] = ()
    checks_in: tuple[tuple[str, Check], ...] = ()

    def covers(self, opset: int) -> bool:
        return opset >= self.min_opset and (self.max_opset is None or opset <= self.max_opset)

    def judge(self, ctx: NodeContext) -> Verdict:
        """Apply the opset, dtype and custom checks of this rule to one node."""
        if not self.covers(ctx.opset):
            upper = "" if self.max_opset is None else f"..{self.max_opset}"
            return Verdict.no(
                f"{self.op_type} at opset {ctx.opset} is outside the supported opsets "
                f"{self.min_opset}{upper}"
            )
        verdict = self._judge_dtypes(ctx)
        if not verdict:
            return verdict
        return self.check(ctx) if self.check is not None else Verdict.yes()

    def _judge_dtypes(self, ctx: NodeContext) -> Verdict:
        node = ctx.node
        if self.dtypes is not None:
            indices: Iterable[int] = (
                self.typed_inputs
                if self.typed_inputs is not None
                else (i for i in range(len(node.input)) if i not in self.shape_inputs)
            )
            for index in indices:
                info = ctx.input(index)
                if info.name and info.dtype is not None and info.dtype not in self.dtypes:
                    return Verdict.no(
                        f"input {index} ('{info.name}') has dtype {dtype_name(info.dtype)}; "
                        f"{self.op_type} takes {_names(self.dtypes)}"
                    )
        allowed = self.output_dtypes if self.output_dtypes is not None else self.dtypes
        if allowed is None:
            return Verdict.yes()
        for index in range(len(node.output)):
            info = ctx.output(index)
            if info.name and info.dtype is not None and info.dtype not in allowed:
                return Verdict.no(
                    f"output {index} ('{info.name}') has dtype {dtype_name(info.dtype)}; "
                    f"{self.op_type} gives {_names(allowed)}"
                )
        return Verdict.yes()


def _names(dtypes: Iterable[int]) -> str:
    return ", ".join(sorted(dtype_name(t) for t in dtypes))


class Registry:
    """All op rules, keyed by (domain, op type); one rule may cover several opset ranges.

    ``library`` is the TensorRT library the verdicts are for (``for_library`` gives a view).
    """

    def __init__(self, library: str = "tensorrt") -> None:
        self._rules: dict[tuple[str, str], list[OpRule]] = {}
        self._value_shaped: dict[tuple[str, str], tuple[int, ...]] = {}
        self.library = library

    def for_library(self, library: str) -> Registry:
        """The same rules, judged for TensorRT library ``library``."""
        if library == self.library:
            return self
        view = Registry(library)
        view._rules = self._rules
        view._value_shaped = self._value_shaped
        return view

    def absence(self, rule: OpRule) -> str:
        """Why this registry's library lacks ``rule``'s op ("" when it has it)."""
        return dict(rule.absent_in).get(self.library, "")

    def fp32_ops(self, precision: str) -> dict[str, str]:
        """Op type -> why it stays FP32 in ``precision`` engines of this registry's library."""
        return {rule.op_type: reason for rules in self._rules.values() for rule in rules
                for library, mode, reason in rule.fp32_in
                if library == self.library and mode == precision}

    def register(self, new: OpRule) -> OpRule:
        """Add a rule; a second rule for an overlapping opset range is a bug and raises."""
        key = (new.domain, new.op_type)
        for old in self._rules.get(key, []):
            if _overlap(old, new):
                raise InternalError(
                    f"two TensorRT rules for {new.domain or 'ai.onnx'}::{new.op_type} cover the "
                    f"same opsets ({old.min_opset}..{old.max_opset} and "
                    f"{new.min_opset}..{new.max_opset})"
                )
        self._rules.setdefault(key, []).append(new)
        return new

    def declare_value_shaped(self, op_type: str, inputs: Sequence[int], domain: str = "") -> None:
        """Record that the values of ``inputs`` of ``op_type`` set the shape of an output.

        For inputs that are not shape tensors of a rule: ordinary tensors whose values decide
        output shapes (NonZero's input), and inputs of ops TensorRT has no rule for. Declaring
        an op twice is a bug and raises.
        """
        key = (_canonical(domain), op_type)
        if key in self._value_shaped:
            raise InternalError(f"value-shaped inputs of {domain or 'ai.onnx'}::{op_type} are "
                                "declared twice")
        self._value_shaped[key] = tuple(sorted(set(inputs)))

    def value_shaped_inputs(self, op_type: str, domain: str, opset: int) -> tuple[int, ...]:
        """Inputs whose values set the shape of an output of ``op_type`` at ``opset``.

        The covering rule's ``shape_inputs`` and the declared ones (the same answer whether
        or not TensorRT has a rule for the op). A value that such an input reads is known only
        when it is a constant, computed from shapes, or comes from warm-up data.
        """
        rule_ = self.find(op_type, domain, opset)
        own = rule_.shape_inputs if rule_ is not None and rule_.covers(opset) else ()
        declared = self._value_shaped.get((_canonical(domain), op_type), ())
        return tuple(sorted({*own, *declared}))

    def value_shaped_ops(self) -> Mapping[tuple[str, str], tuple[int, ...]]:
        """The declared value-shaped inputs, keyed by (domain, op type)."""
        return dict(self._value_shaped)

    def rules_for(self, op_type: str, domain: str = "") -> Sequence[OpRule]:
        return tuple(self._rules.get((_canonical(domain), op_type), ()))

    def find(self, op_type: str, domain: str, opset: int) -> OpRule | None:
        """The rule covering ``opset`` or, when none does, the nearest one (for its reason)."""
        rules = self.rules_for(op_type, domain)
        for candidate in rules:
            if candidate.covers(opset):
                return candidate
        return rules[0] if rules else None

    def op_types(self) -> Mapping[tuple[str, str], Sequence[OpRule]]:
        return dict(self._rules)

    def __len__(self) -> int:
        return len(self._rules)


def _canonical(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


def _overlap(a: OpRule, b: OpRule) -> bool:
    a_hi = a.max_opset if a.max_opset is not None else 10**9
    b_hi = b.max_opset if b.max_opset is not None else 10**9
    return a.min_opset <= b_hi and b.min_opset <= a_hi


REGISTRY = Registry()


def rule(
    op_types: str | Sequence[str], *, registry: Registry | None = None, **fields: Any
) -> Callable[[Check], Check]:
    """Decorator registering ``check`` as the rule for one or more op types.

    Example:
        >>> @rule("LRN", dtypes=FLOATS)  # doctest: +SKIP
        ... def _lrn(ctx): return Verdict.yes()
    """
    names = [op_types] if isinstance(op_types, str) else list(op_types)

    def decorate(check: Check) -> Check:
        for name in names:
            # `registry or REGISTRY` would pick REGISTRY for an empty (falsy) registry.
            (registry if registry is not None else REGISTRY).register(
                OpRule(op_type=name, check=check, **fields)
            )
        return check

    return decorate


def all_of(*checks: Check) -> Check:
    """A check that passes when every check passes; the first failure's reason wins."""

    def combined(ctx: NodeContext) -> Verdict:
        for check in checks:
            verdict = check(ctx)
            if not verdict:
                return verdict
        return Verdict.yes()

    return combined


def any_of(*checks: Check) -> Check:
    """A check that passes when one check passes; otherwise all reasons, joined."""

    def combined(ctx: NodeContext) -> Verdict:
        reasons = []
        for check in checks:
            verdict = check(ctx)
            if verdict:
                return verdict
            reasons.append(verdict.reason)
        return Verdict.no(" and ".join(reasons))

    return combined
