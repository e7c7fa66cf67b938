"""Shared models for the tools' tests: a chain split into two engines around an ORT node."""

from __future__ import annotations

import pytest

from hybridtrt import Input, TensorRTConfig, convert
from tests.models import split_chain

PROFILE = Input("x", (1, 4), (2, 4), (8, 4))


@pytest.fixture
def two_engines(tmp_path):
    """(original path, hybrid path): split_chain converted with Sin kept in ORT."""
    original = tmp_path / "chain.onnx"
    import onnx

    onnx.save(split_chain(), original)
    hybrid = convert(original, TensorRTConfig(inputs=[PROFILE], disable_ops=["Sin"],
                                              min_subgraph_size=1))
    return original, hybrid.save(tmp_path / "chain.hybrid.onnx")
