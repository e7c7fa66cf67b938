"""Rules for control flow: If, Loop and Scan, whose bodies must run in TensorRT as a whole."""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from hybridtrt.converters.checks import (
    FLOATS,
    NUMERIC_BOOL,
    define,
    input_value,
    subgraphs_supported,
    value_shaped,
)
from hybridtrt.converters.registry import NodeContext, Verdict, all_of

__all__: list[str] = []

# Exporters write this trip count to mean "no limit", which TensorRT treats as absent.
_UNBOUNDED_TRIPS = 2**31 - 1


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None] | None:
    tensor = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not tensor.HasField("shape"):
        return None
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim
    ]


def _branch_outputs(ctx: NodeContext) -> Verdict:
    then_graph, else_graph = ctx.attr("then_branch"), ctx.attr("else_branch")
    if then_graph is None or else_graph is None:
        return Verdict.yes()
    shared = {o.name for o in then_graph.output} & {o.name for o in else_graph.output}
    if shared:
        return Verdict.no(
            f"both branches of If output the tensor(s) {sorted(shared)}; TensorRT needs "
            "distinct output names in the two branches"
        )
    for index, (a, b) in enumerate(zip(then_graph.output, else_graph.output, strict=False)):
        ranks = [None if d is None else len(d) for d in (_dims(a), _dims(b))]
        if None not in ranks and ranks[0] != ranks[1]:
            return Verdict.no(
                f"If output {index} has rank {ranks[0]} in then_branch but {ranks[1]} in "
                "else_branch; TensorRT needs the same rank"
            )
    return Verdict.yes()


def _scan_outputs_need_trip_count(ctx: NodeContext) -> Verdict:
    body = ctx.attr("body")
    carried = max(len(ctx.node.input) - 2, 0)
    if body is None or len(body.output) <= 1 + carried:
        return Verdict.yes()
    given = len(ctx.node.input) > 0 and bool(ctx.node.input[0])
    trips = input_value(ctx, 0)
    if given and (trips is None or trips.size != 1 or int(trips.item()) < _UNBOUNDED_TRIPS):
        return Verdict.yes()
    return Verdict.no(
        "Loop has scan outputs but no bounded trip count M; TensorRT sizes scan outputs by M, "
        "so their length cannot depend on the loop condition alone"
    )


_Dims = Sequence[int | str | None] | None


def _mismatch(before: _Dims, after: _Dims) -> bool:
    if before is None or after is None:
        return False
    if len(before) != len(after):
        return True
    pairs = zip(before, after, strict=True)
    return any(isinstance(x, int) and isinstance(y, int) and x != y for x, y in pairs)


def _carried_shapes_stable(ctx: NodeContext) -> Verdict:
    body = ctx.attr("body")
    if body is None:
        return Verdict.yes()
    pairs = zip(list(body.input)[2:], list(body.output)[1:], strict=False)
    for index, (start, end) in enumerate(pairs):
        if _mismatch(_dims(start), _dims(end)):
            return Verdict.no(
                f"Loop-carried value {index} ('{start.name}') changes shape from "
                f"{_dims(start)} to {_dims(end)} in one iteration; TensorRT needs a fixed shape"
            )
    return Verdict.yes()


define(
    "If",
    dtypes=NUMERIC_BOOL,
    check=all_of(_branch_outputs, subgraphs_supported()),
    notes=(
        "Both branches must run in TensorRT, give outputs of equal rank, and not output the "
        "same tensor name."
    ),
)
define(
    "Loop",
    dtypes=NUMERIC_BOOL,
    check=all_of(_scan_outputs_need_trip_count, _carried_shapes_stable, subgraphs_supported()),
    notes=(
        "The body must run in TensorRT; scan outputs need a bounded trip count M; carried "
        "values must keep their shape across iterations."
    ),
)
define(
    "Scan",
    dtypes=FLOATS,
    check=subgraphs_supported(),
    notes="The body must run in TensorRT.",
)
# The branch taken and the trip count decide the output shapes.
value_shaped("If", (0,))
value_shaped("Loop", (0, 1))
