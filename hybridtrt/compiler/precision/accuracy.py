"""The accuracy guard: a lowered FP16/BF16/INT8 engine against its FP32 original, on warm-up inputs.

The FP32 original runs in ONNX Runtime on the CPU; the lowered engine runs as TensorRT builds
and runs it where TensorRT executes engines, else in ONNX Runtime on the CPU (16-bit values
emulated by rounding, as the runtime does without TensorRT): ``measure``. When an output errs
beyond its tolerance, the node responsible is found by bisecting the low-precision nodes in
topological order (lowering only a prefix of them), kept in FP32, and the engine checked
again, until it is within tolerance or entirely FP32. When single nodes stop paying off (an
error made of many small ones), the fewest first nodes that bring it within tolerance are kept
in FP32 at once, as ``polygraphy debug precision`` bisects (the fewest last ones when the
first would be all). FP16/BF16 outputs made by a Softmax or Sigmoid have their logits checked
too (``logits``). INT8 engines keep instead the fewest layers whose quantization alone costs
most (a bisection over their count in that order).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from hybridtrt.compiler.precision import logits
from hybridtrt.compiler.precision.lowp import Lowered
from hybridtrt.compiler.precision.measure import (BY_ONNXRUNTIME, EngineRuns, OrtRuns,
                                                  Unrunnable, ort_outputs)
from hybridtrt.errors import AccuracyError
from hybridtrt.progress import Bar, bar

__all__ = ["PINPOINTED", "Checked", "Demotion", "OutputError", "check", "excess", "output_errors",
           "within"]

_LOG = logging.getLogger("hybridtrt")
# Nodes found one at a time (log2 of the node count runs each) before a whole prefix is kept.
PINPOINTED = 8
_LOGITS = " (logits)"  # how the report names the logits of an output
Feeds = Sequence[Mapping[str, np.ndarray]]
Outputs = list[list[np.ndarray]]
Runs = EngineRuns | OrtRuns
Ranking = Callable[[Sequence[str]], Sequence[str]]


def excess(rel_l2: float, max_abs: float, tolerance: float) -> float:
    """How far an error is past the pass rule (``within``): at most 1 passes."""
    if tolerance <= 0:
        return 0.0 if within(rel_l2, max_abs, tolerance) else float("inf")
    return min(rel_l2 / tolerance, max_abs / (tolerance / 10))


def within(rel_l2: float, max_abs: float, tolerance: float) -> bool:
    """The guard's pass rule: relative L2 within ``tolerance``, or the largest absolute error
    within a tenth of it times the output's range."""
    return rel_l2 <= tolerance or max_abs <= tolerance / 10


@dataclasses.dataclass(frozen=True)
class OutputError:
    """How far one engine output moved from FP32 over the warm-up inputs.

    Attributes:
        output: The tensor's name.
        rel_l2: ``||low - fp32|| / ||fp32||`` over every run (non-float outputs: the share of
            elements that differ).
        max_abs: The largest absolute error divided by the output's range in FP32.
        tolerance: The bound on ``rel_l2``; the output also passes when ``max_abs`` is within a
            tenth of it.
    """

    output: str
    rel_l2: float
    max_abs: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return within(self.rel_l2, self.max_abs, self.tolerance)

    def to_json(self) -> dict[str, Any]:
        return {"output": self.output, "rel_l2": self.rel_l2, "max_abs": self.max_abs,
                "tolerance": self.tolerance}


@dataclasses.dataclass(frozen=True)
class Demotion:
    """A node the guard kept in FP32: the output its lowering moved most, and by how much."""

    name: str
    op_type: str
    output: str
    error: float
    reason: str


@dataclasses.dataclass(frozen=True)
class Checked:
    """The guard's outcome for one engine.

    Attributes:
        lowered: The engine as it ships (the demoted nodes in FP32).
        before: Each output's error with only the rules' FP32 nodes.
        after: Each output's error as it ships.
        demoted: The nodes the guard kept in FP32, in the order found.
        runs: Evaluations of the engine, the FP32 reference included.
        measured_by: What ran the lowered engine: ``"tensorrt"`` (the engine TensorRT built,
            run where TensorRT executes) or ``"onnxruntime"`` (its emulation on the CPU).
        seconds: Time spent (not part of ``info``, which is saved with the model).
    """

    lowered: Lowered
    before: tuple[OutputError, ...]
    after: tuple[OutputError, ...]
    demoted: tuple[Demotion, ...]
    runs: int
    measured_by: str
    seconds: float

    def info(self) -> dict[str, Any]:
        """JSON-ready, deterministic facts for the engine's record and the report."""
        return {"before": [e.to_json() for e in self.before],
                "after": [e.to_json() for e in self.after],
                "demoted": [[d.name, d.op_type, d.output, d.error] for d in self.demoted],
                "runs": self.runs, "measured_by": self.measured_by}


def output_errors(got: Outputs, want: Outputs, names: Sequence[str],
                  tolerance: Callable[[str], float]) -> tuple[OutputError, ...]:
    """Each output's error over all runs (``got[run][output]`` against ``want``)."""
    found = []
    for k, name in enumerate(names):
        a = np.concatenate([np.ravel(run[k]) for run in got]) if got else np.zeros(0)
        b = np.concatenate([np.ravel(run[k]) for run in want]) if want else np.zeros(0)
        rel_l2, max_abs = _error(a, b)
        found.append(OutputError(name, rel_l2, max_abs, tolerance(name)))
    return tuple(found)


def _error(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    if got.shape != want.shape:
        return float("inf"), float("inf")
    if want.dtype.kind != "f":
        share = float(np.mean(got != want)) if want.size else 0.0
        return share, share
    got, want = got.astype(np.float64), want.astype(np.float64)
    finite = np.isfinite(want)
    same_special = np.all((got[~finite] == want[~finite]) | (np.isnan(got[~finite])
                                                             & np.isnan(want[~finite])))
    if not same_special or not np.all(np.isfinite(got[finite])):
        return float("inf"), float("inf")
    diff = got[finite] - want[finite]
    if not diff.size:
        return 0.0, 0.0
    norm, spread, worst = float(np.linalg.norm(want[finite])), float(np.ptp(want[finite])), \
        float(np.max(np.abs(diff)))
    rel_l2 = float(np.linalg.norm(diff)) / norm if norm else (0.0 if worst == 0 else float("inf"))
    max_abs = worst / spread if spread else (0.0 if worst == 0 else float("inf"))
    return rel_l2, max_abs


class _Search:
    """Runs of one engine with chosen nodes kept in FP32, against the FP32 reference (always
    ONNX Runtime's FP32 run of the original: the model's own semantics)."""

    def __init__(self, reference: onnx.ModelProto, lower: Callable[[Mapping[str, str]], Lowered],
                 feeds: Feeds, types: set[int], tolerance: Callable[[str], float],
                 shown: Bar, first: Lowered, runs: Runs) -> None:
        self.lower, self.feeds = lower, feeds
        self.measure = runs
        self.shown = shown
        # the logits too (``logits``), 16-bit only: INT8 has its own bound; an output whose
        # lowered graph shows no Softmax (fused away) is checked as it is
        found = logits.taps(reference) if types else {}
        probes = {k: tap for k, tap in found.items() if k in logits.taps(first.model)}
        count = len(reference.graph.output)
        want = self._centred(ort_outputs(reference, feeds, [t.tensor for t in probes.values()]),
                             probes)
        kept = [j for j in range(len(probes))  # a flat Softmax saturates nothing
                if not logits.flat([run[count + j] for run in want])]
        self.probes = {k: t for j, (k, t) in enumerate(probes.items()) if j in kept}
        self.want = [run[:count] + [run[count + j] for j in kept] for run in want]
        self.tolerance = lambda name: tolerance(name.removesuffix(_LOGITS))
        self.names = [o.name for o in reference.graph.output] + [k + _LOGITS for k in self.probes]
        self.runs = 1
        shown.advance()

    def errors(self, lowered: Lowered) -> tuple[OutputError, ...]:
        got = self.measure.outputs(lowered.model, list(self.probes), self.feeds)
        self.runs += 1
        self.shown.advance()
        return output_errors(self._centred(got, self.probes), self.want, self.names,
                             self.tolerance)

    def _centred(self, runs: Outputs, taps: Mapping[str, logits.Tap]) -> Outputs:
        """Each run's outputs, then the logits of ``taps`` centred (for a Softmax)."""
        count = len(runs[0]) - len(taps) if runs else 0
        return [run[:count] + [logits.centred(v, t) for v, t in zip(run[count:], taps.values())]
                for run in runs]

    def with_low(self, keep: Mapping[str, str], low: Sequence[str],
                 lowered: Sequence[str]) -> tuple[OutputError, ...]:
        """The errors when, of the nodes ``low``, only ``lowered`` are in low precision."""
        chosen = set(lowered)
        return self.errors(self.lower({**keep, **{n: "" for n in low if n not in chosen}}))

    def responsible(self, keep: Mapping[str, str], low: Sequence[str],
                    failing: tuple[OutputError, ...]) -> Demotion:
        """The first node of ``low`` whose lowering (with the ones before it) fails."""
        lo, hi = 0, len(low)  # lowering low[:lo] passes (nothing lowered), low[:hi] fails
        while hi - lo > 1:
            mid = (lo + hi) // 2
            errors = self.with_low(keep, low, low[:mid])
            if all(e.passed for e in errors):
                lo = mid
            else:
                hi, failing = mid, errors
        name = low[hi - 1]
        alone = failing if hi == 1 else self.with_low(keep, low, [name])  # hi == 1: just run
        if not all(e.passed for e in alone):
            worst = _worst(alone)
            reason = (f"accuracy guard: lowering it alone moved output '{worst.output}' by "
                      f"{worst.rel_l2:.3g} (relative L2; tolerance {worst.tolerance:g})")
        else:
            worst = _worst(failing)
            reason = (f"accuracy guard: lowering it after the {hi - 1} low-precision node(s) "
                      f"before it moved output '{worst.output}' by {worst.rel_l2:.3g} (relative "
                      f"L2; tolerance {worst.tolerance:g}; alone {_worst(alone).rel_l2:.3g})")
        return Demotion(name, "", worst.output, worst.rel_l2, reason)

    def prefix(self, keep: Mapping[str, str], low: Sequence[str],
               failing: tuple[OutputError, ...],
               order: str = "in topological order") -> list[Demotion]:
        """The fewest first nodes of ``low`` that, kept in FP32, bring every output within
        tolerance (all of them at most); ``order`` says how ``low`` is sorted."""
        lo, hi = 0, len(low)  # keeping low[:lo] fails, keeping low[:hi] (all) passes
        while hi - lo > 1:
            mid = (lo + hi) // 2
            errors = self.with_low(keep, low, low[mid:])
            if all(e.passed for e in errors):
                hi = mid
            else:
                lo, failing = mid, errors
        worst = _worst(failing)
        fewer = f"the first {lo} only" if lo else "none of them"
        reason = (f"accuracy guard: of the first {hi} low-precision nodes {order}, "
                  f"the fewest that, kept in FP32, bring the engine within tolerance (with "
                  f"{fewer} kept, output '{worst.output}' errs by {worst.rel_l2:.3g}, relative "
                  f"L2; tolerance {worst.tolerance:g})")
        return [Demotion(n, "", worst.output, worst.rel_l2, reason) for n in low[:hi]]

    def either_end(self, keep: Mapping[str, str], low: Sequence[str],
                   failing: tuple[OutputError, ...]) -> list[Demotion]:
        """The fewest first nodes of ``low`` that, kept in FP32, bring the engine within
        tolerance, or when that takes them all, the fewest last nodes (``polygraphy debug
        precision``'s reverse direction): an error made by the last layers (logits rounded to
        BF16) would otherwise keep the whole engine FP32."""
        first = self.prefix(keep, low, failing)
        if len(first) < len(low) or len(low) < 2:
            return first
        last = self.prefix(keep, low[::-1], failing, "in reverse topological order")
        return last if len(last) < len(first) else first


def _worst(errors: Sequence[OutputError]) -> OutputError:
    return max(errors, key=lambda e: excess(e.rel_l2, e.max_abs, e.tolerance))


def check(reference: onnx.ModelProto, lower: Callable[[Mapping[str, str]], Lowered],
          keep: Mapping[str, str], feeds: Feeds, types: set[int],
          tolerance: Callable[[str], float], engine: str, strict: bool,
          rank: Ranking | None = None, engine_runs: EngineRuns | None = None) -> Checked | None:
    """Check an engine, and keep in FP32 the nodes that put it beyond tolerance (None, with a
    warning, when ONNX Runtime cannot run it on the CPU).

    The lowered engine is measured through ``engine_runs`` (the engine TensorRT builds, run
    where TensorRT executes) when given, else through ONNX Runtime's emulation of it; an engine
    that cannot be built or run is measured through the emulation instead, with a warning.

    Args:
        reference: The engine's FP32 subgraph as a model.
        lower: Lowers the engine with the given ``{node name: reason}`` kept in FP32.
        keep: The nodes the rules keep in FP32.
        feeds: Warm-up values of the engine's inputs, one ``{name: array}`` per run.
        types: The 16-bit types the lowered engine computes in.
        tolerance: Output name -> its relative L2 bound.
        engine: The engine's name, for messages.
        strict: Raise instead of keeping nodes in FP32.
        rank: Sorts the low-precision nodes, costliest first (INT8: by sensitivity); when
            given, the fewest costliest nodes that bring the engine within tolerance are kept
            in FP32 (a bisection over their count) instead of bisecting in topological order
            (the ranking's own runs are not counted in ``Checked.runs``).
        engine_runs: Builds and runs the lowered engine (None: ONNX Runtime emulates it).

    Raises:
        AccuracyError: ``strict`` and an output beyond tolerance.
    """
    runs: Runs = engine_runs if engine_runs is not None else OrtRuns(frozenset(types))
    start = time.perf_counter()
    try:
        return _check(reference, lower, dict(keep), feeds, types, runs, tolerance, engine,
                      strict, rank)
    except Unrunnable as exc:
        if runs.by == BY_ONNXRUNTIME:
            _LOG.warning("engine %s is not checked against FP32: %s", engine, exc)
            return None
        _LOG.warning("engine %s is checked against FP32 through ONNX Runtime's emulation of its "
                     "lowered graph, not through the engine: %s", engine, exc)
        found = check(reference, lower, keep, feeds, types, tolerance, engine, strict, rank)
        # (the time spent on the engine's builds and runs before it fell back counts too)
        return (dataclasses.replace(found, seconds=time.perf_counter() - start)
                if found is not None else None)


def _check(reference: onnx.ModelProto, lower: Callable[[Mapping[str, str]], Lowered],
           keep: dict[str, str], feeds: Feeds, types: set[int], runs: Runs,
           tolerance: Callable[[str], float], engine: str, strict: bool,
           rank: Ranking | None) -> Checked:
    start = time.perf_counter()
    with bar(total=None, desc=f"accuracy guard {engine}", unit="run") as shown:
        lowered = lower(keep)
        search = _Search(reference, lower, feeds, types, tolerance, shown, lowered, runs)
        before = errors = search.errors(lowered)
        if strict and not all(e.passed for e in errors):
            worst = _worst([e for e in errors if not e.passed])
            raise AccuracyError(
                f"engine {engine}: output '{worst.output}' errs by {worst.rel_l2:.3g} (relative "
                f"L2; max abs {worst.max_abs:.3g} of its range) against FP32 on the warm-up "
                f"inputs, beyond accuracy_tolerance {worst.tolerance:g}; raise "
                "accuracy_tolerance, or drop strict_accuracy to keep the nodes responsible in FP32")
        demoted: list[Demotion] = []
        history = [_worst(errors).rel_l2]
        while not all(e.passed for e in errors) and lowered.low:
            if rank is not None:
                found = search.prefix(keep, rank(lowered.low), errors,
                                      "sorted by the error their quantization alone causes")
            elif len(demoted) < PINPOINTED and (len(history) < 2 or history[-1] <= history[-2] / 2):
                found = [search.responsible(keep, lowered.low, errors)]
            else:  # many small errors adding up: keep a prefix FP32, the way polygraphy does
                found = search.either_end(keep, lowered.low, errors)
            op_types = {n.name: n.op_type for n in lowered.model.graph.node}
            for one in found:
                one = dataclasses.replace(one, op_type=op_types.get(one.name, ""))
                _LOG.info("engine %s keeps %s (%s) in FP32: %s", engine, one.name, one.op_type,
                          one.reason)
                demoted.append(one)
                keep[one.name] = one.reason
            shown.note(f"{len(demoted)} node(s) kept in FP32")
            lowered = lower(keep)
            errors = search.errors(lowered)
            history.append(_worst(errors).rel_l2)
    if not all(e.passed for e in errors):
        worst = _worst([e for e in errors if not e.passed])
        _LOG.warning("engine %s stays beyond accuracy_tolerance with every node in FP32: output "
                     "'%s' errs by %.3g (relative L2; tolerance %g) against its FP32 original "
                     "on the warm-up inputs", engine, worst.output, worst.rel_l2, worst.tolerance)
    return Checked(lowered, before, errors, tuple(demoted), search.runs, runs.by,
                   time.perf_counter() - start)

