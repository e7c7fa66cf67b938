"""A stand-in NodeContext for judging one node without a model, for tests of rules and compiler."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from hybridtrt.converters.registry import (
    REGISTRY,
    NodeContext,
    Registry,
    TensorInfo,
    Verdict,
    attribute_value,
)

__all__ = ["FakeContext", "graph_constants", "judge", "verdict_of"]

Shape = tuple[int | str | None, ...]


@dataclasses.dataclass(frozen=True)
class FakeContext:
    """A ``NodeContext`` built from explicit tensor infos and constant values.

    Attributes:
        node: The node being judged.
        inputs: One ``TensorInfo`` per node input (missing indices count as omitted inputs).
        outputs: One ``TensorInfo`` per node output.
        constants: Constant values keyed by tensor name.
        opset: Opset of the node's domain.
        subgraph_judge: Verdict for a control-flow body; None judges every body node with
            ``REGISTRY`` (knowing nothing of its tensors).
    """

    node: onnx.NodeProto
    inputs: tuple[TensorInfo, ...] = ()
    outputs: tuple[TensorInfo, ...] = ()
    constants: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    opset: int = 21
    subgraph_judge: Callable[[onnx.GraphProto], Verdict] | None = None

    @classmethod
    def of(
        cls,
        node: onnx.NodeProto,
        *,
        dtype: int | None = TensorProto.FLOAT,
        dtypes: Mapping[str, int | None] | None = None,
        shapes: Mapping[str, Shape | None] | None = None,
        constants: Mapping[str, Any] | None = None,
        opset: int = 21,
        subgraph_judge: Callable[[onnx.GraphProto], Verdict] | None = None,
    ) -> FakeContext:
        """Describe every input and output of ``node`` from a few overrides.

        Args:
            node: The node, e.g. from ``onnx.helper.make_node``.
            dtype: Element type of every tensor not named in ``dtypes``.
            dtypes: Element type per tensor name.
            shapes: Shape per tensor name (unknown rank when absent).
            constants: Values of the tensors that are initializers or Constant outputs.
            opset: Opset of the node's domain.
            subgraph_judge: See the class attributes.
        """
        values = {k: np.asarray(v) for k, v in (constants or {}).items()}

        def info(name: str) -> TensorInfo:
            if not name:
                return TensorInfo("")
            return TensorInfo(
                name,
                (dtypes or {}).get(name, dtype),
                (shapes or {}).get(name),
                name in values,
            )

        return cls(
            node,
            tuple(info(n) for n in node.input),
            tuple(info(n) for n in node.output),
            values,
            opset,
            subgraph_judge,
        )

    def input(self, index: int) -> TensorInfo:
        return self.inputs[index] if index < len(self.inputs) else TensorInfo("")

    def output(self, index: int) -> TensorInfo:
        return self.outputs[index] if index < len(self.outputs) else TensorInfo("")

    def constant_value(self, index: int) -> np.ndarray | None:
        name = self.input(index).name
        return self.constants.get(name) if name else None

    def attr(self, name: str, default: Any = None) -> Any:
        return attribute_value(self.node, name, default)

    def subgraph_verdict(self, graph: onnx.GraphProto) -> Verdict:
        if self.subgraph_judge is not None:
            return self.subgraph_judge(graph)
        constants = graph_constants(graph)
        for node in graph.node:
            verdict = judge(FakeContext.of(node, dtype=None, constants=constants, opset=self.opset))
            if not verdict:
                return Verdict.no(f"body node '{node.name or node.op_type}': {verdict.reason}")
        return Verdict.yes()


def graph_constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and ``Constant`` outputs (tensor-valued) of one graph, by name."""
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def judge(ctx: NodeContext, registry: Registry = REGISTRY) -> Verdict:
    """The verdict of the rule that covers ``ctx.node`` at ``ctx.opset``, as the compiler asks."""
    found = registry.find(ctx.node.op_type, ctx.node.domain, ctx.opset)
    if found is None:
        return Verdict.no(f"no TensorRT rule for {ctx.node.op_type}")
    return found.judge(ctx)


def verdict_of(node: onnx.NodeProto, **context: Any) -> Verdict:
    """``judge(FakeContext.of(node, **context))``: the one-line form tests use."""
    return judge(FakeContext.of(node, **context))
