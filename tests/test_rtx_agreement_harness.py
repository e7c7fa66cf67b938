"""benchmarks/rtx_agreement.py classifies one-node models as the rules and TensorRT-RTX answer."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from benchmarks.rtx_agreement import (BUILDS, COMMAND, DOCS, KEPT_OUT, agreement, collect, freeze, one_node_cases,
                                     probe, write_docs)
from hybridtrt.trt.backends import load_backend
from hybridtrt.trt.library import RTX, installed
from tests.suites import Case

BACKEND, REASON = load_backend(RTX) if installed(RTX) else (None, "tensorrt_rtx is not installed")
pytestmark = pytest.mark.skipif(
    BACKEND is None, reason=f"TensorRT-RTX: {REASON} (pip install tensorrt-rtx-cu13==1.7.1.116)")


Value = tuple[str, int, list[int | str]]


def one_node(name: str, op: str, inputs: list[Value], output: Value,
             feeds: dict[str, np.ndarray] | None = None, **attrs: Any) -> Case:
    node = helper.make_node(op, [n for n, _, _ in inputs], [output[0]], name=op.lower(), **attrs)
    graph = helper.make_graph([node], name,
                              [helper.make_tensor_value_info(*value) for value in inputs],
                              [helper.make_tensor_value_info(*output)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    return Case(name, model, dict(feeds or {}), None)


def test_a_relu_both_accept_is_an_agreement() -> None:
    assert BACKEND is not None
    row = agreement(one_node("relu", "Relu", [("x", TensorProto.FLOAT, [2, 3])],
                             ("y", TensorProto.FLOAT, [2, 3])), BACKEND)
    assert row.category == "rules yes & RTX builds" and not row.disagrees


def test_nonzero_is_refused_at_parse_and_the_rtx_rules_agree() -> None:
    assert BACKEND is not None
    row = agreement(one_node("nonzero", "NonZero", [("x", TensorProto.FLOAT, [2, 3])],
                             ("y", TensorProto.INT64, [2, "n"])), BACKEND)
    assert row.category == "rules no & RTX fails" and not row.disagrees
    assert row.rules.reason.startswith("TensorRT-RTX lacks NonZero")
    assert "NonZero" in row.rtx.message and "plugin" in row.rtx.message


def test_a_reshape_reading_its_shape_from_a_graph_input_is_kept_out_and_builds_frozen() -> None:
    assert BACKEND is not None
    case = one_node("reshape", "Reshape", [("x", TensorProto.FLOAT, [2, 3]),
                                           ("shape", TensorProto.INT64, [2])],
                    ("y", TensorProto.FLOAT, [3, 2]), {"shape": np.array([3, 2], np.int64)})
    row = agreement(case, BACKEND)
    assert row.category == KEPT_OUT and not row.in_tensorrt and not row.disagrees
    assert row.rules.shape_inputs == ("shape",) and "shape tensors" in row.rtx.message
    frozen = freeze(case, row.rules.shape_inputs)
    assert probe(BACKEND, frozen.SerializeToString()).stage == BUILDS


def test_a_float64_cast_rtx_builds_stays_no_and_is_counted_apart() -> None:
    assert BACKEND is not None
    row = agreement(one_node("cast", "Cast", [("x", TensorProto.FLOAT, [4])],
                             ("y", TensorProto.DOUBLE, [4]), to=TensorProto.DOUBLE), BACKEND)
    assert row.rules.float64 and "float64" in row.rules.reason
    assert row.category == "rules no & RTX builds (float64)"


@pytest.mark.slow
def test_the_rules_agree_with_tensorrt_rtx_within_the_targets_and_the_docs_are_current(tmp_path) -> None:
    """Every one-node backend case (about 25 s on 2 cores): at most 5 nodes the rules send to
    TensorRT that RTX cannot build, at most 30 (float64 aside) the rules keep out that RTX
    builds; docs/RTX_AGREEMENT.md is what the harness writes now."""
    assert BACKEND is not None
    rows = collect(one_node_cases(), jobs=2, timeout=60.0)
    yes_fails = [r.case for r in rows if r.in_tensorrt and r.rtx.stage != BUILDS]
    no_builds = [r.case for r in rows
                 if not r.rules.supported and r.rtx.stage == BUILDS and not r.rules.float64]
    assert len(yes_fails) <= 5, yes_fails
    assert len(no_builds) <= 30, no_builds
    written = tmp_path / "RTX_AGREEMENT.md"
    write_docs(rows, BACKEND.version, written)
    assert written.read_text() == DOCS.read_text(), f"regenerate it: {COMMAND}"
