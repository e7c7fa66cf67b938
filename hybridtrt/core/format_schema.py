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

# One validator per field, its schema checked once: ``jsonschema.validate`` checks the schema
# against the meta-schema on every call, which cost more than reading the record itself.
def _validator(schema: Mapping[str, Any]) -> Any:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


_VALIDATORS = {field: _validator(schema) for field, schema in SCHEMAS.items()}


def check_record(engine: str, field: str, value: Any) -> None:
    """Raise FormatError when ``value`` (a parsed JSON attribute) breaks its schema."""
    error = jsonschema.exceptions.best_match(_VALIDATORS[field].iter_errors(value))
    if error is not None:
        where = "".join(f"[{p!r}]" for p in error.absolute_path)
        raise FormatError(f"engine node '{engine}': attribute '{field}'{where}: {error.message}") from error


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
