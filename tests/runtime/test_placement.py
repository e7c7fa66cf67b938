"""Which handed-over values stay in host memory on the GPU (``runtime.placement``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import onnx

from hybridtrt.runtime.placement import kept_on_host, output_places
from hybridtrt.runtime.plan import SegmentSpec


def spec(name: str, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> SegmentSpec:
    return SegmentSpec("ort", name, onnx.ModelProto(), inputs, outputs)


def test_values_ort_writes_on_the_host_stay_there_when_only_ort_segments_read_them() -> None:
    # ort_0 -> s (host), a (device); ort_1 reads s, a -> t (host), b; ort_2 reads t -> y, w
    # (host); engine_2 reads b and u (host, but an engine reads it) and v; ort_4 reads y (the
    # model's output too) and w
    specs = [spec("ort_0", ("x",), ("s", "a", "u")), spec("ort_1", ("s", "a"), ("t", "b")),
             spec("ort_2", ("t", "b"), ("y", "v", "w")), spec("engine_2", ("b", "u", "v"), ("z",)),
             spec("ort_4", ("y", "w"), ("q",))]
    places: list[Any] = [{"s": True, "a": False, "u": True}, {"t": True, "b": False},
                         {"y": True, "v": True, "w": True}, None, {"q": True}]
    kept = kept_on_host(specs, places, {"y", "z", "q"})
    assert kept == [{"s"}, {"t"}, {"w"}, frozenset(), frozenset()]
    # a segment that needs device values (an engine, a graph session) keeps nothing on the
    # host and lets nothing it reads be kept there
    places[1] = None
    assert kept_on_host(specs, places, {"y", "z", "q"}) == [frozenset()] * 2 + [{"w"}] + [frozenset()] * 2


def test_output_places_reads_the_sessions_memory_infos() -> None:
    outputs = [SimpleNamespace(name=n) for n in ("shape", "data", "pinned")]
    infos = [SimpleNamespace(name=n) for n in ("Cpu", "Cuda", "CudaPinned")]
    session = SimpleNamespace(get_outputs=lambda: outputs, get_output_memory_infos=lambda: infos)
    assert output_places(session) == {"shape": True, "data": False, "pinned": False}
    older = SimpleNamespace(get_outputs=lambda: outputs)  # onnxruntime before 1.23
    assert output_places(older) == {"shape": False, "data": False, "pinned": False}
