"""Which values handed between ORT segments stay in host memory on the GPU: those ORT writes
there (shape values) and only ORT segments that can take host values read.
Why: docs/PERFORMANCE.md, "The GPU run strategies and why".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from hybridtrt.runtime.plan import SegmentSpec

__all__ = ["kept_on_host", "output_places"]

_HOST = "Cpu"  # the name of ORT's host allocator (not "CudaPinned": that memory is written late)


def output_places(session: Any) -> dict[str, bool]:
    """``{output: whether ORT writes it in host memory}`` for one session (all False with an
    onnxruntime that cannot tell, before 1.23)."""
    infos = getattr(session, "get_output_memory_infos", None)
    names = [o.name for o in session.get_outputs()]
    if infos is None:
        return dict.fromkeys(names, False)
    return {name: info.name == _HOST for name, info in zip(names, infos())}


def kept_on_host(specs: Sequence[SegmentSpec], places: Sequence[Mapping[str, bool] | None],
                 model_outputs: Collection[str]) -> list[frozenset[str]]:
    """Per segment, the outputs to bind in host memory.

    Args:
        specs: The plan's segments, in run order.
        places: Per segment, ``output_places`` of its session; None for a segment that needs
            its values on the device (an engine, a session that captures CUDA graphs).
        model_outputs: The model's outputs (they go to the caller as they are: left alone).

    Returns:
        The outputs that ORT writes in host memory and that only ORT segments which can take
        host values read.
    """
    readers: dict[str, list[int]] = {}
    for position, spec in enumerate(specs):
        for name in spec.inputs:
            readers.setdefault(name, []).append(position)
    kept: list[frozenset[str]] = []
    for spec, where in zip(specs, places):
        if where is None:
            kept.append(frozenset())
            continue
        kept.append(frozenset(
            name for name in spec.outputs
            if where.get(name) and name not in model_outputs and readers.get(name)
            and all(places[j] is not None for j in readers[name])))
    return kept
