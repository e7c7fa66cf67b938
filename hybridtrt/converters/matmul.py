"""Rules for matrix products: MatMul, Gemm and Einsum."""

from __future__ import annotations

import string

from hybridtrt.converters.checks import FLOATS, attr_value, define
from hybridtrt.converters.registry import NodeContext, Verdict

__all__: list[str] = []

_EINSUM_CHARS = frozenset(string.ascii_lowercase + ",->. ")


def _einsum_lowercase(ctx: NodeContext) -> Verdict:
    equation = str(attr_value(ctx, "equation", ""))
    odd = sorted(set(equation) - _EINSUM_CHARS)
    if not odd:
        return Verdict.yes()
    return Verdict.no(
        f"Einsum equation {equation!r} uses {''.join(odd)!r}; TensorRT takes only lowercase "
        "subscript letters"
    )


def _vector_times_batch(ctx: NodeContext) -> Verdict:
    ranks = [ctx.input(i).rank for i in (0, 1)]
    if 1 in ranks and any(r is not None and r > 2 for r in ranks):
        return Verdict.no(f"MatMul of ranks {ranks[0]} and {ranks[1]}: TensorRT's parser "
                          "reshapes a 1D operand against a batched one wrongly")
    return Verdict.yes()


define("MatMul", dtypes=FLOATS, check=_vector_times_batch,
       notes="Not a 1D operand against a batched (3D+) one.")
define("Gemm", dtypes=FLOATS)
define(
    "Einsum",
    dtypes=FLOATS,
    check=_einsum_lowercase,
    notes="Subscripts must be lowercase letters.",
)
