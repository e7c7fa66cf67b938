"""The logits behind an engine's Softmax/Sigmoid outputs, which the accuracy guard checks too.

A saturated Softmax hides the error of its input: on confident warm-up inputs the
probabilities barely move, while on an input near a decision boundary the same error in the
logits moves them a lot (PaddleOCR's direction classifier in BF16: 1.8e-3 relative L2 on six
confident warm-up lines, 2e-2 on forty others). The logits' error does not depend on the input
being confident, so checking it keeps the guard's verdict valid for inputs it never saw.
Softmax ignores a shift of its input, so its logits are compared centred (their mean over the
Softmax axis removed): a large common offset would otherwise hide an error in their gaps.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx

__all__ = ["FLAT", "Tap", "centred", "flat", "taps"]

_SATURATING = ("Softmax", "Sigmoid")
# Between the Softmax and the output: layout ops, and the casts a lowered graph adds.
_LAYOUT = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Cast")
_OPSET_13 = 13
# Centred logits all within this of 0 (nats): the probabilities differ by less than 0.01%, so
# nothing saturates and the output's own check sees the error (their relative error would be
# noise over nothing).
FLAT = 1e-4  # Softmax normalizes one axis from opset 13 (before: every axis from ``axis`` on)


@dataclasses.dataclass(frozen=True)
class Tap:
    """The logits of one output: the tensor feeding its Softmax (``axis``) or Sigmoid (None).

    Attributes:
        tensor: The Softmax/Sigmoid input.
        axis: The Softmax axis; None for a Sigmoid (its logits are compared as they are).
        trailing: The Softmax normalizes every axis from ``axis`` on (opset < 13).
    """

    tensor: str
    axis: int | None
    trailing: bool = False


def taps(model: onnx.ModelProto) -> dict[str, Tap]:
    """``{output: its logits}`` for the outputs a Softmax or Sigmoid makes, found from the
    output through layout ops and casts (so a lowered graph, whose inner tensors the float16
    converter renames, is read the same way)."""
    made = {o: n for n in model.graph.node for o in n.output}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), _OPSET_13)
    found = {}
    for output in model.graph.output:
        node = made.get(output.name)
        while node is not None and node.op_type in _LAYOUT and node.input:
            node = made.get(node.input[0])
        if node is None or node.op_type not in _SATURATING or node.input[0] not in made:
            continue
        if node.op_type == "Sigmoid":
            found[output.name] = Tap(node.input[0], None)
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"),
                    -1 if opset >= _OPSET_13 else 1)
        found[output.name] = Tap(node.input[0], axis, opset < _OPSET_13)
    return found


def centred(values: np.ndarray, tap: Tap) -> np.ndarray:
    """``values`` of ``tap`` as the guard compares them: a Softmax's logits less their mean."""
    if tap.axis is None or values.ndim == 0:
        return values
    values = values.astype(np.float64)  # a float32 mean of large logits rounds by their ulp
    axis = tap.axis % values.ndim
    if tap.trailing:
        rows = values.reshape(int(np.prod(values.shape[:axis], dtype=np.int64)), -1)
        return (rows - rows.mean(axis=1, keepdims=True)).reshape(values.shape)
    return values - values.mean(axis=axis, keepdims=True)


def flat(runs: list[np.ndarray]) -> bool:
    """Whether centred logits (one array per run) stay within ``FLAT`` of 0 in every run."""
    return all(float(np.max(np.abs(v), initial=0.0)) < FLAT for v in runs)
