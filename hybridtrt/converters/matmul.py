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


define(("MatMul", "Gemm"), dtypes=FLOATS)
define(
    "Einsum",
    dtypes=FLOATS,
    check=_einsum_lowercase,
    notes="Subscripts must be lowercase letters.",
)
