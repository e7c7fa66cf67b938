"""Rules for reductions: the Reduce* family, ArgMax and ArgMin."""

from __future__ import annotations

from hybridtrt.converters.checks import INT64_ONLY, NUMERIC, constant_input, define

__all__: list[str] = []

_REDUCE_OPS = (
    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
    "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare",
)  # fmt: skip

define(
    _REDUCE_OPS,
    dtypes=NUMERIC,
    typed_inputs=(0,),
    shape_inputs=(1,),
    check=constant_input(1, "axes"),
    notes="An axes input must be a constant.",
)
define(("ArgMax", "ArgMin"), dtypes=NUMERIC, output_dtypes=INT64_ONLY)
