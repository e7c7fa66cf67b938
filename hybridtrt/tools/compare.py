"""``hybridtrt compare``: run the original model in ONNX Runtime and the hybrid model through the
Predictor on the same inputs, compare every output, and on a mismatch find the first segment
whose outputs diverge by comparing the tensors at every segment boundary."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from hybridtrt.errors import ConfigError, ExecutionError
from hybridtrt.ort_support import first_line, ort_session
from hybridtrt.runtime.plan import SegmentSpec
from hybridtrt.tools.tables import text_table
from hybridtrt.tools.target import Target, make_feeds

__all__ = ["CompareResult", "SegmentDiff", "TensorDiff", "compare", "diff_tensor"]


@dataclasses.dataclass(frozen=True)
class TensorDiff:
    """One tensor of the hybrid run against the same tensor of the original run.

    ``mismatched`` counts elements with ``|hybrid - original| > atol + rtol * |original|``
    (NaN matches NaN); integer and boolean tensors must be equal.
    """

    name: str
    shape: tuple[int, ...]
    original_shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    mismatched: int
    size: int

    @property
    def ok(self) -> bool:
        return self.shape == self.original_shape and self.mismatched == 0


@dataclasses.dataclass(frozen=True)
class SegmentDiff:
    """A segment's outputs against the original model's values of the same tensors."""

    name: str
    runs_in: str
    inputs_ok: bool
    outputs: tuple[TensorDiff, ...]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.outputs)


@dataclasses.dataclass(frozen=True)
class CompareResult:
    """What ``compare`` found; ``first_divergence`` is set only when an output mismatches."""

    model: str
    original_from: str
    atol: float
    rtol: float
    outputs: tuple[TensorDiff, ...]
    segments: tuple[SegmentDiff, ...]
    first_divergence: str | None
    missing: tuple[str, ...] = ()  # hybrid outputs the original model does not have
    skipped: tuple[str, ...] = ()  # outputs that are not tensors (sequences, optionals)

    @property
    def ok(self) -> bool:
        return bool(self.outputs) and not self.missing and all(t.ok for t in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        tensor = lambda t: {**dataclasses.asdict(t), "ok": t.ok}  # noqa: E731
        return {"model": self.model, "original_from": self.original_from, "atol": self.atol,
                "rtol": self.rtol, "ok": self.ok, "first_divergence": self.first_divergence,
                "missing": list(self.missing), "skipped": list(self.skipped),
                "outputs": [tensor(t) for t in self.outputs],
                "segments": [{"name": s.name, "runs_in": s.runs_in, "inputs_ok": s.inputs_ok,
                              "ok": s.ok, "outputs": [tensor(t) for t in s.outputs]}
                             for s in self.segments]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def render(self) -> str:
        lines = [f"hybrid:   {self.model}", f"original: {self.original_from}",
                 f"tolerance: |hybrid - original| <= {self.atol:g} + {self.rtol:g} * |original|", ""]
        lines += text_table(("output", "shape", "max abs", "max rel", "mismatched", "result"),
                           [_row(t) for t in self.outputs])
        lines += ["", "tensors at each segment boundary (engines run as their own segments):"]
        lines += text_table(("segment", "runs in", "outputs", "max abs", "mismatched", "result"),
                            [(s.name, s.runs_in, str(len(s.outputs)),
                              f"{max((t.max_abs for t in s.outputs), default=0.0):.3g}",
                              str(sum(t.mismatched for t in s.outputs)),
                              "ok" if s.ok else "DIVERGES") for s in self.segments])
        lines.append("")
        if self.skipped:
            lines.append(f"not compared (not tensors): {list(self.skipped)}")
        if self.missing:
            lines.append(f"FAILED: the original model has no output {list(self.missing)}: is "
                         "it the model this hybrid was converted from?")
            return "\n".join(lines)
        if not self.outputs:
            lines.append("FAILED: no tensor output to compare")
            return "\n".join(lines)
        if self.ok:
            lines.append(f"PASSED: all {len(self.outputs)} compared output(s) match")
            return "\n".join(lines)
        failed = [t.name for t in self.outputs if not t.ok]
        lines.append(f"FAILED: {len(failed)} of {len(self.outputs)} output(s) differ: {failed}")
        if self.first_divergence is not None:
            first = next(s for s in self.segments if s.name == self.first_divergence)
            worst = max((t for t in first.outputs if not t.ok), key=lambda t: t.max_abs)
            cause = ("its inputs match the original, so the difference starts inside it"
                     if first.inputs_ok else "some of its inputs already differ")
            lines.append(f"first diverging segment: {first.name} ({first.runs_in}); {cause}; "
                         f"worst tensor {worst.name}: max abs {worst.max_abs:.3g}, "
                         f"{worst.mismatched} of {worst.size} elements off")
        return "\n".join(lines)


def diff_tensor(name: str, value: Any, original: Any, atol: float, rtol: float) -> TensorDiff:
    """Compare one hybrid value with the original one."""
    got, want = np.asarray(value), np.asarray(original)
    if got.shape != want.shape:
        return TensorDiff(name, got.shape, want.shape, float("inf"), float("inf"), want.size, want.size)
    if got.dtype.kind in "biuU" or want.dtype.kind in "biuU":
        wrong = int(np.count_nonzero(got != want))
        worst = float(wrong > 0)
        if wrong and got.dtype.kind != "U" and want.dtype.kind != "U":
            worst = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        return TensorDiff(name, got.shape, want.shape, worst, worst, wrong, want.size)
    a, b = got.astype(np.float64), want.astype(np.float64)
    gaps = np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b))
    gaps = np.where(np.isnan(gaps), np.inf, gaps)  # NaN on one side only
    scale = np.abs(np.nan_to_num(b))
    wrong = int(np.count_nonzero(gaps > atol + rtol * scale))
    rel = gaps / np.maximum(scale, 1e-12)
    return TensorDiff(name, got.shape, want.shape, float(gaps.max(initial=0.0)),
                      float(rel.max(initial=0.0)), wrong, want.size)


class _Capture:
    """Keeps every segment's inputs' names and its outputs as host arrays."""

    def __init__(self, to_host: Any) -> None:
        self.to_host = to_host
        self.values: dict[str, Any] = {}
        self.inputs: dict[str, tuple[str, ...]] = {}

    def before(self, position: int, spec: SegmentSpec) -> None:
        self.inputs[spec.name] = spec.inputs

    def after(self, position: int, spec: SegmentSpec, inputs: Mapping[str, Any],
              outputs: Sequence[Any]) -> None:
        for name, value in zip(spec.outputs, outputs):
            if value is None or isinstance(value, (list, tuple)):
                continue  # sequences and optionals are not compared at boundaries
            host = self.to_host(value)
            if isinstance(host, np.ndarray):
                self.values[name] = host


def compare(target: Target, atol: float = 1e-4, rtol: float = 1e-3,
            shapes: Mapping[str, tuple[int, ...]] | None = None,
            inputs: Mapping[str, np.ndarray] | None = None, use_gpu: bool = False,
            device_id: int = 0, seed: int = 0) -> CompareResult:
    """Compare ``target``'s hybrid model with its original on the same inputs.

    Fallback engines run as their own segments, so each engine's boundary is compared.

    Args:
        target: What to compare (``hybridtrt.tools.target.load_target``).
        atol: Absolute tolerance.
        rtol: Relative tolerance (of the original value).
        shapes: Input shapes for random inputs (default: static or engine profile opt shapes).
        inputs: Given input arrays.
        use_gpu: Run both on CUDA device ``device_id``.
        device_id: The CUDA device.
        seed: Seed of the random inputs.
    """
    if atol < 0 or rtol < 0:
        raise ConfigError(f"tolerances must be >= 0, got atol={atol}, rtol={rtol}")
    predictor = target.predictor(use_gpu, device_id, isolate_engines=True)
    feeds = make_feeds(target, predictor, shapes, inputs, seed)
    capture = _Capture(predictor.device.to_host)
    predictor.set_segment_observer(capture)
    try:
        outputs = predictor.run_dict(feeds)
    finally:
        predictor.set_segment_observer(None)
    expected = _run_original(target.original, feeds, list(capture.values), use_gpu, device_id)
    originals = {o.name for o in target.original.graph.output}
    missing = tuple(n for n in outputs if n not in originals)
    skipped = tuple(n for n in outputs if n in originals and (
        n not in expected or not isinstance(outputs[n], np.ndarray)))
    output_diffs = tuple(diff_tensor(n, v, expected[n], atol, rtol) for n, v in outputs.items()
                         if n in expected and isinstance(v, np.ndarray))
    runs_in = {p.name: p.runs_in for p in predictor.engine_status()}
    diverged: set[str] = set()
    segments = []
    for spec in predictor.segments():
        diffs = tuple(diff_tensor(n, capture.values[n], expected[n], atol, rtol)
                      for n in spec.outputs if n in capture.values and n in expected)
        segment = SegmentDiff(spec.name, runs_in.get(spec.name, "onnxruntime"),
                              not diverged.intersection(spec.inputs), diffs)
        diverged.update(t.name for t in diffs if not t.ok)
        segments.append(segment)
    ok = all(t.ok for t in output_diffs)
    first = None if ok else next((s.name for s in segments if not s.ok), None)
    return CompareResult(str(target.path), target.original_from, atol, rtol, output_diffs,
                         tuple(segments), first, missing, skipped)


def _run_original(model: onnx.ModelProto, feeds: Mapping[str, Any], names: Sequence[str],
                  use_gpu: bool, device_id: int) -> dict[str, Any]:
    """Run the original model in ONNX Runtime, fetching its outputs and ``names`` too."""
    import onnxruntime as ort

    produced = {o for n in model.graph.node for o in n.output}
    present = {o.name for o in model.graph.output}
    extra = [n for n in names if n in produced and n not in present]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers: list[Any] = (
        [("CUDAExecutionProvider", {"device_id": str(device_id)})] if use_gpu
        else ["CPUExecutionProvider"])
    wanted = [o.name for o in model.graph.output] + extra
    try:
        session = ort_session(model, options, providers,
                              outputs=[onnx.ValueInfoProto(name=n) for n in extra])
        results = session.run(wanted, {k: np.asarray(v) for k, v in feeds.items()})
    except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
        raise ExecutionError(f"ONNX Runtime cannot run the original model: {first_line(exc)}") from exc
    return {n: v for n, v in zip(wanted, results) if isinstance(v, np.ndarray)}


def _row(t: TensorDiff) -> tuple[str, ...]:
    shape = "x".join(map(str, t.shape)) or "scalar"
    if t.shape != t.original_shape:
        shape += f" (original {'x'.join(map(str, t.original_shape)) or 'scalar'})"
    return (t.name, shape, f"{t.max_abs:.3g}", f"{t.max_rel:.3g}", f"{t.mismatched}/{t.size}",
            "ok" if t.ok else "MISMATCH")

