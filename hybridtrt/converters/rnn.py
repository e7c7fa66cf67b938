"""Rules for the recurrent layers RNN, GRU and LSTM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hybridtrt.converters.checks import FLOATS, attr_equals, attr_value, define
from hybridtrt.converters.registry import Check, NodeContext, Verdict, all_of

__all__: list[str] = []

_LAYOUT_NOTE = "layout must be 0 (sequence first)"
_BIDIRECTIONAL_NOTE = "a bidirectional layer needs the same activations in both directions"


def _halves_differ(values: Sequence[Any] | None, per_direction: int) -> bool:
    if not values or len(values) != 2 * per_direction:
        return False
    return [str(v).lower() for v in values[:per_direction]] != [
        str(v).lower() for v in values[per_direction:]
    ]


def _same_activations_both_ways(per_direction: int) -> Check:
    """Bidirectional layers must use one activation setting for the forward and reverse pass."""

    def check(ctx: NodeContext) -> Verdict:
        if attr_value(ctx, "direction", "forward") != "bidirectional":
            return Verdict.yes()
        for name in ("activations", "activation_alpha", "activation_beta"):
            if _halves_differ(attr_value(ctx, name, None), per_direction):
                return Verdict.no(
                    f"bidirectional {ctx.node.op_type} uses different {name} for the forward "
                    "and reverse pass, which TensorRT does not support"
                )
        return Verdict.yes()

    return check


_SEQUENCE_FIRST = attr_equals("layout", 0, 0)

define(
    "RNN",
    dtypes=FLOATS,
    typed_inputs=(0, 1, 2, 3, 5),
    check=all_of(_SEQUENCE_FIRST, _same_activations_both_ways(1)),
    notes=f"{_LAYOUT_NOTE}; {_BIDIRECTIONAL_NOTE}.",
)
define(
    "GRU",
    dtypes=FLOATS,
    typed_inputs=(0, 1, 2, 3, 5),
    check=all_of(_SEQUENCE_FIRST, _same_activations_both_ways(2)),
    notes=f"{_LAYOUT_NOTE}; {_BIDIRECTIONAL_NOTE}.",
)
define(
    "LSTM",
    dtypes=FLOATS,
    typed_inputs=(0, 1, 2, 3, 5, 6, 7),
    check=all_of(
        _SEQUENCE_FIRST, attr_equals("input_forget", 0, 0), _same_activations_both_ways(3)
    ),
    notes=f"{_LAYOUT_NOTE}; input_forget must be 0; {_BIDIRECTIONAL_NOTE}.",
)
