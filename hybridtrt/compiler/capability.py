"""Stage 2: ask the converter registry about every node; the answers form a CapabilityReport."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence

import onnx

from hybridtrt.core.graph import GraphIndex
import hybridtrt.converters  # noqa: F401  (importing it registers every op rule)
from hybridtrt.converters.registry import REGISTRY
from hybridtrt.converters.registry import (
    ALL_TRT_TYPES,
    NodeContext,
    OpRule,
    Registry,
    Verdict,
    dtype_name,
)
from hybridtrt.trt.library import label

__all__ = ["CapabilityReport", "NodeVerdict", "judge_graph", "judge_node"]


@dataclasses.dataclass(frozen=True)
class NodeVerdict:
    """The capability answer for one node of the main graph."""

    index: int
    name: str
    op_type: str
    domain: str
    supported: bool
    reason: str


@dataclasses.dataclass(frozen=True)
class CapabilityReport:
    """Per-node answers in graph order; ``supported[i]`` mirrors ``verdicts[i].supported``."""

    verdicts: tuple[NodeVerdict, ...]

    @property
    def supported(self) -> list[bool]:
        return [v.supported for v in self.verdicts]

    def rejected(self) -> list[NodeVerdict]:
        return [v for v in self.verdicts if not v.supported]


def judge_node(
    ctx: NodeContext, registry: Registry = REGISTRY, disabled: Collection[str] = frozenset()
) -> Verdict:
    """The verdict for one node: user exclusions, then dtypes, then the op's rule.

    Args:
        ctx: What is known about the node.
        registry: Rules to consult (the global REGISTRY unless testing).
        disabled: Op types or node names the user keeps out of TensorRT.
    """
    node = ctx.node
    if node.op_type in disabled:
        return Verdict.no(f"op type {node.op_type} is in disable_ops")
    if node.name and node.name in disabled:
        return Verdict.no(f"node '{node.name}' is in disable_ops")
    domain = "" if node.domain == "ai.onnx" else node.domain
    found = registry.find(node.op_type, domain, ctx.opset)
    if found is None:
        where = f" in custom domain '{domain}'" if domain else ""
        return Verdict.no(f"TensorRT has no converter for {node.op_type}{where}")
    absent = registry.absence(found)
    if absent:
        return Verdict.no(f"{label(registry.library)} lacks {node.op_type}: {absent}")
    verdict = _judge_tensor_types(ctx)
    if not verdict:
        return verdict
    verdict = found.judge(ctx)
    for library, check in found.checks_in:
        extra = check(ctx) if verdict and library == registry.library else Verdict.yes()
        if not extra:
            return Verdict.no(f"{label(library)}: {extra.reason}")
    return verdict


def _judge_tensor_types(ctx: NodeContext) -> Verdict:
    node = ctx.node
    for kind, count, get in (("input", len(node.input), ctx.input),
                             ("output", len(node.output), ctx.output)):
        for i in range(count):
            info = get(i)
            if info.name and info.kind not in ("", "tensor_type"):
                return Verdict.no(f"{kind} '{info.name}' is a {info.kind.removesuffix('_type')}; "
                                  "TensorRT takes tensors only")
            if info.name and info.dtype is not None and info.dtype not in ALL_TRT_TYPES:
                return Verdict.no(
                    f"{kind} '{info.name}' is {dtype_name(info.dtype)}, a type TensorRT does not have"
                )
    return Verdict.yes()


def judge_graph(
    index: GraphIndex, registry: Registry = REGISTRY, disabled: Sequence[str] = ()
) -> CapabilityReport:
    """Stage 2 of ``convert``: a verdict for every node of the main graph.

    Rules without a custom check depend only on the op, opset and tensor dtypes, so their
    verdicts are computed once per such signature (large models repeat a few signatures).
    """
    disabled_set = frozenset(disabled)
    judge_body = _body_judge(registry, disabled_set, index.model)
    memo: dict[tuple[object, ...], Verdict] = {}
    rules: dict[tuple[str, str], OpRule | None] = {}
    verdicts = []
    dtype = {**index.dtypes(), "": 0}.get  # an omitted input or output: 0
    for i, node in enumerate(index.nodes):
        op_type, name, node_domain = node.op_type, node.name, node.domain
        key = None
        if op_type not in disabled_set and name not in disabled_set:
            op = (op_type, node_domain)
            if op not in rules:
                domain = "" if node_domain == "ai.onnx" else node_domain
                rules[op] = registry.find(op_type, domain, index.opsets.get(domain, 1))
            found = rules[op]
            if found is not None and found.check is None:
                key = (op, tuple(map(dtype, node.input)), tuple(map(dtype, node.output)))
        verdict = memo.get(key) if key is not None else None
        if verdict is None:  # the node's context is made only for the nodes judged
            verdict = judge_node(index.context(i, judge_body), registry, disabled_set)
            if key is not None:
                memo[key] = verdict
        verdicts.append(
            NodeVerdict(i, name, op_type, node_domain, verdict.supported, verdict.reason)
        )
    return CapabilityReport(tuple(verdicts))


def _body_judge(
    registry: Registry, disabled: frozenset[str], model: onnx.ModelProto
) -> Callable[[onnx.GraphProto, Mapping[str, int]], Verdict]:
    def judge(body: onnx.GraphProto, opsets: Mapping[str, int]) -> Verdict:
        wrapper = onnx.ModelProto()
        wrapper.graph.CopyFrom(body)
        wrapper.opset_import.extend(model.opset_import)
        inner = GraphIndex(wrapper)
        for i, node in enumerate(inner.nodes):
            verdict = judge_node(inner.context(i, judge), registry, disabled)
            if not verdict:
                label = node.name or node.op_type
                return Verdict.no(f"body node '{label}' ({node.op_type}): {verdict.reason}")
        return Verdict.yes()

    return judge
