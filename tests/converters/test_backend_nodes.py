"""Every rule answers every onnx backend node case (real attribute mixes) without raising."""

from __future__ import annotations

import dataclasses
import functools
import warnings

import onnx
import pytest

import hybridtrt.converters  # noqa: F401  (fills REGISTRY)
from hybridtrt.converters.registry import TensorInfo, Verdict
from hybridtrt.converters.testing import FakeContext, graph_constants, judge


def _infos(graph: onnx.GraphProto) -> dict[str, TensorInfo]:
    infos = {}
    for value in [*graph.input, *graph.output, *graph.value_info]:
        tensor = value.type.tensor_type
        shape = None
        if value.type.HasField("tensor_type") and tensor.HasField("shape"):
            shape = tuple(
                d.dim_value if d.HasField("dim_value") else d.dim_param or None
                for d in tensor.shape.dim
            )
        dtype = tensor.elem_type if value.type.HasField("tensor_type") else None
        infos[value.name] = TensorInfo(value.name, dtype, shape)
    return infos


def _contexts(model: onnx.ModelProto) -> list[FakeContext]:
    graph, opset = (
        model.graph,
        max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=21),
    )
    values = graph_constants(graph)
    infos = _infos(graph)

    def info(name: str) -> TensorInfo:
        found = infos.get(name, TensorInfo(name)) if name else TensorInfo("")
        return dataclasses.replace(found, is_constant=name in values)

    return [
        FakeContext(
            node,
            tuple(info(n) for n in node.input),
            tuple(info(n) for n in node.output),
            {n: values[n] for n in node.input if n in values},
            opset,
        )
        for node in graph.node
    ]


@functools.lru_cache(maxsize=1)
def _cases() -> dict[str, onnx.ModelProto]:
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {t.name: t.model for t in load_model_tests(kind="node") if t.model is not None}


def test_every_backend_node_gets_a_verdict_with_a_reason_when_rejected() -> None:
    judged = supported = 0
    for model in _cases().values():
        for ctx in _contexts(model):
            verdict = judge(ctx)
            assert isinstance(verdict, Verdict)
            assert verdict.supported or verdict.reason, ctx.node
            judged += 1
            supported += verdict.supported
    assert judged > 1500 and supported > judged // 2


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("test_maxpool_2d_dilations", "MaxPool with dilations [2, 2] is not supported by "
                                      "TensorRT; pooling dilations must all be 1"),
        ("test_resize_upsample_scales_cubic", "attribute mode='cubic' of Resize is not "
                                              "supported by TensorRT (it takes 'nearest', "
                                              "'linear')"),
        ("test_unique_not_sorted_without_axis", "no TensorRT rule for Unique"),
    ],
)  # fmt: skip
def test_known_backend_rejections(case: str, reason: str) -> None:
    assert judge(_contexts(_cases()[case])[0]) == Verdict.no(reason)
