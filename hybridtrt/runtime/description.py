"""How a model's inputs, outputs and metadata are described, as ONNX Runtime's session does."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx

from hybridtrt.core.graph import tensor_info_from_value
from hybridtrt.core.format import DOMAIN

__all__ = ["ModelMetadata", "NodeArg", "model_metadata", "node_arg"]


@dataclasses.dataclass(frozen=True)
class NodeArg:
    """A model input or output as ONNX Runtime describes it (``get_inputs()``/``get_outputs()``)."""

    name: str
    type: str
    shape: list[int | str | None]
    dtype: np.dtype | None


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    """The model's metadata as ONNX Runtime's ``get_modelmeta()`` gives it."""

    producer_name: str
    graph_name: str
    domain: str
    description: str
    graph_description: str
    version: int
    custom_metadata_map: dict[str, str]


def node_arg(value: onnx.ValueInfoProto) -> NodeArg:
    """The description of a graph input or output."""
    info = tensor_info_from_value(value)
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(info.dtype)) if info.dtype else None
    return NodeArg(value.name, _type_name(value.type), list(info.shape or []), dtype)


def _type_name(kind: onnx.TypeProto) -> str:
    """ONNX Runtime's spelling of a value's type: "tensor(float)", "seq(tensor(int64))",
    "optional(tensor(float))", "map(string,tensor(float))"..."""
    which = kind.WhichOneof("value")
    if which == "tensor_type":
        return f"tensor({_element(kind.tensor_type.elem_type)})"
    if which == "sequence_type":
        return f"seq({_type_name(kind.sequence_type.elem_type)})"
    if which == "optional_type":
        return f"optional({_type_name(kind.optional_type.elem_type)})"
    if which == "map_type":
        return f"map({_element(kind.map_type.key_type)},{_type_name(kind.map_type.value_type)})"
    if which == "sparse_tensor_type":
        return f"sparse_tensor({_element(kind.sparse_tensor_type.elem_type)})"
    return "unknown"


def _element(elem_type: int) -> str:
    return onnx.TensorProto.DataType.Name(elem_type).lower() if elem_type else "unknown"


def model_metadata(model: onnx.ModelProto) -> ModelMetadata:
    """What ONNX Runtime reports for ``model``, hybridtrt's own metadata keys left out."""
    custom = {p.key: p.value for p in model.metadata_props if not p.key.startswith(f"{DOMAIN}.")}
    return ModelMetadata(model.producer_name, model.graph.name, model.domain, model.doc_string,
                         model.graph.doc_string, model.model_version, custom)
