"""The JSON schema of an engine node's attributes, so a tampered or malformed record is one
``FormatError`` naming the engine and the field at load, not a traceback later."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


def _dims(value: Any) -> bool:
    return type(value) is list and all(type(d) is int for d in value)


def _ranges(value: Any) -> bool:
    return type(value) is dict and all(
        type(r) is dict and all(k in r and _dims(r[k]) for k in ("min", "opt", "max"))
        for r in value.values())


def _profiles(value: Any) -> bool:
    return type(value) is list and all(
        type(p) is dict and "inputs" in p and _ranges(p["inputs"])
        and ("outputs" not in p or _ranges(p["outputs"])) for p in value)


def _precision(value: Any) -> bool:
    if type(value) is not dict or type(value.get("mode", "")) is not str:
        return False
    nodes = value.get("fp32_nodes", [])
    return type(nodes) is list and all(
        type(n) is list and all(type(s) is str for s in n) for n in nodes)


# What every record the compiler writes looks like, checked in plain Python: a value these
# accept meets its schema (they accept less: no float-valued dims, no subclasses), and only
# the rest is walked by jsonschema, which took seconds on a 2,000-engine model.
_PLAIN: Mapping[str, Callable[[Any], bool]] = {
    "profiles": _profiles,
    "build_settings": lambda value: type(value) is dict,
    "fingerprint": lambda value: type(value) is dict,
    "precision": _precision,
}


def check_record(engine: str, field: str, value: Any) -> None:
    """Raise FormatError when ``value`` (a parsed JSON attribute) breaks its schema."""
    if _PLAIN[field](value):
        return
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
