"""Rules for the transformer ops of recent opsets: Attention, RotaryEmbedding, TensorScatter."""

from __future__ import annotations

from onnx import TensorProto

from hybridtrt.converters.checks import (
    FLOATS,
    INT64_ONLY,
    attr_equals,
    define,
    input_dtype,
    input_rank_in,
    no_input,
    no_output,
)
from hybridtrt.converters.registry import all_of
from hybridtrt.trt.library import RTX

__all__: list[str] = []

_ATTENTION_TYPES = FLOATS | {TensorProto.INT8, TensorProto.FLOAT8E4M3FN}

define(
    "Attention",
    dtypes=_ATTENTION_TYPES,
    typed_inputs=(0, 1, 2),
    check=all_of(
        *(input_rank_in(i, name, (4,)) for i, name in enumerate(("Q", "K", "V", "attn_mask"))),
        no_input(4, "past_key"),
        no_input(5, "past_value"),
        no_input(6, "nonpad_kv_seqlen"),
        no_output(1, "present_key"),
        no_output(2, "present_value"),
        no_output(3, "qk_matmul_output"),
        attr_equals("qk_matmul_output_mode", 0, 0),
        attr_equals("softcap", 0.0, 0.0),
    ),
    notes=(
        "Q, K, V and attn_mask must be 4D (heads in dim 1); no KV-cache inputs or outputs, "
        "no qk_matmul_output, no softcap. TensorRT 10.14+."
    ),
    absent_in=((RTX, "its builder has no Attention kernel for the backend cases in FP32, FP16 "
                     "or BF16, and its parser refuses a mask with causal (measured with 1.7.1)"),),
)
define(
    "RotaryEmbedding",
    dtypes=FLOATS,
    typed_inputs=(0, 1, 2),
    check=input_dtype(3, "position_ids", INT64_ONLY),
    notes="position_ids must be int64. TensorRT 10.15+.",
)
define(
    "TensorScatter",
    dtypes=FLOATS | {TensorProto.INT32},
    typed_inputs=(0, 1),
    check=all_of(
        input_rank_in(0, "past_cache", (4,)),
        input_rank_in(1, "update", (4,)),
        attr_equals("axis", -2, -2),
        attr_equals("mode", "linear", "linear"),
    ),
    notes="past_cache and update must be 4D, axis must be -2 and mode linear. TensorRT 10.15+.",
)
