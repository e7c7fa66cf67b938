"""The TensorRT op rules: importing this package fills ``REGISTRY`` with every supported op."""

from __future__ import annotations

from hybridtrt.converters import (  # noqa: F401  (each module registers its rules on import)
    attention,
    control_flow,
    conv,
    elementwise,
    matmul,
    misc,
    quantize,
    reduce,
    resize,
    rnn,
    shape,
)
from hybridtrt.converters.registry import (
    REGISTRY,
    NodeContext,
    OpRule,
    TensorInfo,
    Verdict,
    all_of,
    any_of,
    rule,
)
from hybridtrt.converters.table import markdown_table, support_table

__all__ = [
    "REGISTRY",
    "NodeContext",
    "OpRule",
    "TensorInfo",
    "Verdict",
    "all_of",
    "any_of",
    "markdown_table",
    "rule",
    "support_table",
]
