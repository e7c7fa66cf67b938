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
    # ONNX Runtime's spelling: the ONNX type's name, "tensor(float)", "tensor(int64)"...
    kind = onnx.TensorProto.DataType.Name(info.dtype).lower() if info.dtype else "unknown"
    return NodeArg(value.name, f"tensor({kind})", list(info.shape or []), dtype)


def model_metadata(model: onnx.ModelProto) -> ModelMetadata:
    """What ONNX Runtime reports for ``model``, hybridtrt's own metadata keys left out."""
    custom = {p.key: p.value for p in model.metadata_props if not p.key.startswith(f"{DOMAIN}.")}
    return ModelMetadata(model.producer_name, model.graph.name, model.domain, model.doc_string,
                         model.graph.doc_string, model.model_version, custom)
