"""Which nodes of an FP16/BF16 cluster stay in FP32, each with its reason.

The user's ``ops_run_float`` (op types or node names, as in Paddle) plus an automatic guard: the
warm-up runs' activation peaks against FP16's safe range, reductions over many elements, and the
usual suspects (normalizations, long Softmax, Pow/Exp).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import onnx

from hybridtrt.config import PrecisionMode

__all__ = ["FP16_SAFE", "FP16_TINY", "TensorStats", "fp32_nodes"]

# A quarter of FP16's largest value: headroom for inputs the warm-up runs did not show.
FP16_SAFE = 16384.0
# FP16's smallest normal value: below it a tensor keeps only a few bits, or none.
FP16_TINY = 2.0 ** -14
LONG_REDUCTION = 4096
LONG_SOFTMAX = 1024

_NORMALIZATIONS = frozenset({"LayerNormalization", "GroupNormalization",
                             "SimplifiedLayerNormalization", "SkipLayerNormalization"})
_REDUCTIONS = frozenset({"ReduceSum", "ReduceMean", "ReduceSumSquare", "ReduceL1", "ReduceL2",
                         "ReduceLogSum", "ReduceLogSumExp", "ReduceProd", "GlobalAveragePool",
                         "GlobalLpPool"})
_OVERFLOWING = {"Pow": "Pow overflows FP16 easily (x^2 past |x| = 256)",
                "Exp": "Exp overflows FP16 past x = 11"}


@dataclasses.dataclass(frozen=True)
class TensorStats:
    """What the warm-up runs showed of one tensor: its largest magnitude and largest shape."""

    peak: float
    shape: tuple[int, ...]


def fp32_nodes(
    nodes: Sequence[onnx.NodeProto],
    mode: PrecisionMode,
    ops_run_float: Sequence[str],
    guard: bool,
    stats: Mapping[str, TensorStats],
    library_fp32: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Node name -> reason for every node to keep in FP32.

    Args:
        nodes: The cluster's nodes (named).
        mode: FP16 or BF16 (the range guard applies to FP16 only: BF16 has FP32's range).
        ops_run_float: Op types or node names the user keeps in FP32.
        guard: Whether the automatic guard applies.
        stats: Warm-up statistics of the tensors (missing tensors are simply not judged).
        library_fp32: Op type -> why the TensorRT library cannot build it in this precision.
    """
    listed = set(ops_run_float)
    library_fp32 = library_fp32 or {}
    keep = {}
    out_of_range = _out_of_range(nodes, stats) if guard and mode is PrecisionMode.FP16 else {}
    for node in nodes:
        if node.op_type in library_fp32:
            keep[node.name] = library_fp32[node.op_type]
        elif node.name in listed or node.op_type in listed or _unfused(node.name) in listed:
            keep[node.name] = "listed in ops_run_float"
        elif guard:
            reason = _fragile(node, mode, stats) or _reads_out_of_range(node, out_of_range)
            if reason:
                keep[node.name] = reason
    return keep


def _out_of_range(nodes: Sequence[onnx.NodeProto], stats: Mapping[str, TensorStats]) -> dict[str, str]:
    """Tensors made inside the cluster that must never be stored in FP16, with why.

    Keeping only the producer of such a tensor in FP32 is not enough: the converter casts its
    output back to FP16 for every FP16 consumer, which then reads infinity (a Sqrt of an
    overflowed variance turns a LayerNorm into zeros) or zero (a division by a flushed value).
    """
    made = {o for node in nodes for o in node.output if o}
    found = {}
    for name in made:
        peak = stats[name].peak if name in stats else 0.0
        if peak > FP16_SAFE:
            found[name] = (f"reached {peak:.3g} in the warm-up runs, beyond FP16's safe range "
                           f"({FP16_SAFE:.0f})")
        elif 0.0 < peak < FP16_TINY:
            found[name] = (f"never exceeded {peak:.3g} in the warm-up runs, below FP16's normal "
                           f"range ({FP16_TINY:.3g}): it would flush to zero")
    return found


def _reads_out_of_range(node: onnx.NodeProto, out_of_range: Mapping[str, str]) -> str:
    for name in node.input:
        if name in out_of_range:
            return f"reads '{name}', which {out_of_range[name]}"
    for name in node.output:
        if name in out_of_range:
            return f"output '{name}' {out_of_range[name]}"
    return ""


def _unfused(name: str) -> str:
    """The original name of a node layer folding fused: ONNX Runtime names it
    ``<original>/<Kind>Fusion`` (``/fc/MatMul/MatMulAddFusion`` for ``/fc/MatMul``)."""
    head, sep, tail = name.rpartition("/")
    return head if sep and tail.endswith("Fusion") else name


def _fragile(node: onnx.NodeProto, mode: PrecisionMode, stats: Mapping[str, TensorStats]) -> str:
    low = mode.name
    op = node.op_type
    if mode is PrecisionMode.FP16:
        peaks = [(stats[o].peak, o) for o in node.output if o in stats]
        peak, name = max(peaks, default=(0.0, ""))
        if peak > FP16_SAFE:
            return (f"output '{name}' reached {peak:.3g} in the warm-up runs, beyond FP16's safe "
                    f"range ({FP16_SAFE:.0f})")
        if op in _OVERFLOWING:
            return _OVERFLOWING[op]
    if op in _NORMALIZATIONS:
        return f"normalization: mean and variance lose precision in {low}"
    if op in ("Softmax", "LogSoftmax"):
        length = _axis_length(node, stats)
        if length >= LONG_SOFTMAX:
            return f"{op} over {length} elements (>= {LONG_SOFTMAX}) loses precision in {low}"
    if op in _REDUCTIONS:
        count = _reduced(node, stats)
        if count > LONG_REDUCTION:
            return f"reduces {count} elements per output (> {LONG_REDUCTION}) in {low}"
    return ""


def _axis_length(node: onnx.NodeProto, stats: Mapping[str, TensorStats]) -> int:
    shape = stats[node.input[0]].shape if node.input and node.input[0] in stats else None
    if not shape:
        return 0
    axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
    return shape[axis] if -len(shape) <= axis < len(shape) else 0


def _reduced(node: onnx.NodeProto, stats: Mapping[str, TensorStats]) -> int:
    """Input elements per output element, from the largest shapes the warm-up runs saw."""
    if not node.input or node.input[0] not in stats or node.output[0] not in stats:
        return 0
    inputs = math.prod(stats[node.input[0]].shape)
    outputs = max(math.prod(stats[node.output[0]].shape), 1)
    return inputs // outputs
