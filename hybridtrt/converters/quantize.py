"""Rules for explicit quantization: QuantizeLinear and DequantizeLinear."""

from __future__ import annotations

import numpy as np

from hybridtrt.converters.checks import (
    FLOATS,
    QUANTIZED,
    constant_input_where,
    define,
    input_dtype,
)
from hybridtrt.converters.registry import Check, all_of

__all__: list[str] = []


def _zero_point_is_zero(index: int, what: str) -> Check:
    # TensorRT quantizes symmetrically: the zero point can only be 0.
    return constant_input_where(
        index,
        what,
        lambda v: not np.asarray(v, dtype=np.float64).any(),
        "be all zeros: TensorRT quantizes symmetrically",
    )


define(
    "QuantizeLinear",
    dtypes=FLOATS,
    typed_inputs=(0, 1),
    output_dtypes=QUANTIZED,
    check=_zero_point_is_zero(2, "y_zero_point"),
    notes="Symmetric only: a zero point must be a constant of zeros. Gives int8, fp8, int4, fp4.",
)
define(
    "DequantizeLinear",
    dtypes=QUANTIZED,
    typed_inputs=(0,),
    output_dtypes=FLOATS,
    check=all_of(input_dtype(1, "x_scale", FLOATS), _zero_point_is_zero(2, "x_zero_point")),
    notes="Symmetric only: a zero point must be a constant of zeros.",
)
