"""Rules for element-wise math, comparison, logic and activation ops."""

from __future__ import annotations

from onnx import TensorProto

from hybridtrt.converters.checks import (
    BOOL_ONLY,
    FLOATS,
    FP32_FP16,
    INTS,
    NUMERIC,
    attr_value,
    constant_input_where,
    define,
)
from hybridtrt.converters.registry import NodeContext, Verdict

__all__: list[str] = []

_FLOAT_UNARY = (
    "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Cos", "Cosh", "Erf", "Exp",
    "Floor", "Log", "Reciprocal", "Round", "Sin", "Sinh", "Sqrt", "Tan", "Tanh",
)  # fmt: skip
_FLOAT_ACTIVATIONS = (
    "Elu", "HardSigmoid", "HardSwish", "LeakyRelu", "ParametricSoftplus", "ScaledTanh",
    "Selu", "Sigmoid", "Softplus", "Softsign", "ThresholdedRelu", "Softmax", "LogSoftmax",
    "PRelu", "ImageScaler",
)  # fmt: skip
# Clip is listed for floats only, but the 10.x importer clips int32/int64 element-wise too.
_NUMERIC_UNARY = ("Abs", "Neg", "Relu", "Sign", "Shrink", "Clip")
_NUMERIC_VARIADIC = ("Add", "Sub", "Mul", "Div", "Max", "Min", "Sum")
_COMPARISONS = ("Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual")


def _mod_fmod(ctx: NodeContext) -> Verdict:
    dtype = ctx.input(0).dtype
    if attr_value(ctx, "fmod", 0) == 1 or dtype is None or dtype in INTS:
        return Verdict.yes()
    return Verdict.no(
        "Mod with fmod=0 takes integer inputs only; floating-point inputs need fmod=1"
    )


def _hardmax_axis_known(ctx: NodeContext) -> Verdict:
    shape = ctx.input(0).shape
    if shape is None:
        return Verdict.yes()
    axis = int(attr_value(ctx, "axis", 1 if ctx.opset < 13 else -1))
    axis += len(shape) if axis < 0 else 0
    # Before opset 13 Hardmax works on the input flattened from `axis` on.
    dims = shape[axis:] if ctx.opset < 13 else shape[axis : axis + 1]
    if all(isinstance(d, int) for d in dims):
        return Verdict.yes()
    return Verdict.no(
        f"Hardmax needs the size of axis {axis} of its input when the engine is built, "
        f"but it is {list(dims)}"
    )


define(_FLOAT_UNARY + _FLOAT_ACTIVATIONS, dtypes=FLOATS)
define("Mish", dtypes=FP32_FP16)
define("Celu", dtypes=frozenset({TensorProto.FLOAT}),
       notes="FP32 only: the ONNX parser's Celu fails on FP16/BF16 inputs (rank mismatch).")
define(_NUMERIC_UNARY + _NUMERIC_VARIADIC, dtypes=NUMERIC)
define("Mean", dtypes=NUMERIC | {TensorProto.FLOAT8E4M3FN})
define("Gelu", dtypes=NUMERIC | {TensorProto.INT8})
define(
    "Pow",
    dtypes=NUMERIC,
    typed_inputs=(0,),
    notes="The exponent may have another numeric type than the base.",
)
define(
    "Mod",
    dtypes=NUMERIC,
    check=_mod_fmod,
    notes="Floating-point inputs need fmod=1.",
)
define(
    "Hardmax",
    dtypes=FLOATS,
    check=_hardmax_axis_known,
    notes="The size of the reduced axis must be known when the engine is built.",
)
define(_COMPARISONS, dtypes=NUMERIC, output_dtypes=BOOL_ONLY)
# Older than TRT_MIN_OPSET, but unchanged since (And/Or/Xor gained broadcasting at 7, their
# debut as defined here): the parser builds them (measured with TensorRT-RTX 1.7.1's).
define(("And", "Or", "Xor"), min_opset=7, dtypes=BOOL_ONLY)
define("Not", min_opset=1, dtypes=BOOL_ONLY)
define("IsInf", dtypes=FLOATS, output_dtypes=BOOL_ONLY)
define("IsNaN", dtypes=NUMERIC, output_dtypes=BOOL_ONLY)
define(
    "Dropout",
    dtypes=FLOATS,
    typed_inputs=(0,),
    output_dtypes=FLOATS | BOOL_ONLY,
    check=constant_input_where(
        2, "training_mode", lambda v: not v.any(), "be false: TensorRT only runs inference"
    ),
    notes="Inference only: a training_mode input must be a constant false.",
)
