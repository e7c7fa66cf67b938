"""The JSON schema of an engine node's attributes, so a tampered or malformed record is one
``FormatError`` naming the engine and the field at load, not a traceback later."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
import onnx

from hybridtrt.errors import FormatError

__all__ = ["check_record", "check_subgraph"]

_DIMS = {"type": "array", "items": {"type": "integer"}}
_RANGE = {"type": "object", "required": ["min", "opt", "max"],
          "properties": {"min": _DIMS, "opt": _DIMS, "max": _DIMS}}
_RANGES = {"type": "object", "additionalProperties": _RANGE}

SCHEMAS: Mapping[str, Mapping[str, Any]] = {
    "profiles": {"type": "array", "items": {
        "type": "object", "required": ["inputs"],
        "properties": {"inputs": _RANGES, "outputs": _RANGES}}},
    "build_settings": {"type": "object"},
    "fingerprint": {"type": "object"},
    "precision": {"type": "object", "properties": {
        "mode": {"type": "string"},
        "fp32_nodes": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
    }},
}


def check_record(engine: str, field: str, value: Any) -> None:
    """Raise FormatError when ``value`` (a parsed JSON attribute) breaks its schema."""
    try:
        jsonschema.validate(value, SCHEMAS[field])
    except jsonschema.ValidationError as exc:
        where = "".join(f"[{p!r}]" for p in exc.absolute_path)
        raise FormatError(f"engine node '{engine}': attribute '{field}'{where}: {exc.message}") from exc


def check_subgraph(engine: str, graph: onnx.GraphProto, domain: str) -> None:
    """Raise FormatError for what no converter writes: unknown tensor types, nested engines."""
    for tensor in graph.initializer:
        if tensor.data_type not in onnx.TensorProto.DataType.values():
            raise FormatError(f"engine node '{engine}': weight '{tensor.name}' has data type "
                              f"{tensor.data_type}, which ONNX does not define")
    nested = [n.name or n.op_type for n in graph.node if n.domain == domain]
    if nested:
        raise FormatError(f"engine node '{engine}': its subgraph holds hybridtrt node(s) {nested}; "
                          "engines do not nest")
