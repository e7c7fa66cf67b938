"""Compare hybridtrt's op rules with what TensorRT-RTX parses and builds, case by case.

For every one-node case of ONNX's backend node suite (``tests.suites.backend_node_cases``),
the rule registry's verdict (``judge_graph`` on the loaded model, as ``convert`` asks it) is set
against TensorRT-RTX's answer for the same one-node model: its parser (``supports_model_v2``,
then ``parse``) and its ahead-of-time builder for compute capability 8.9 (which needs no GPU).
A case whose input is a shape tensor counts as failing at build, as hybridtrt refuses it there.
TensorRT runs in worker processes, one case at a time each, so that a crash or a hang costs one
case (recorded as ``crashed`` / ``timed out``), not the run.

Prints a table of counts and every disagreement by op type; ``--write-docs`` writes
docs/RTX_AGREEMENT.md.

    python benchmarks/rtx_agreement.py [--limit N] [--filter SUBSTR] [--jobs 2] [--write-docs]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import multiprocessing
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.suites, and this checkout's hybridtrt

from hybridtrt.compiler.capability import judge_graph  # noqa: E402
from hybridtrt.core.graph import GraphIndex  # noqa: E402
from hybridtrt.core.loading import load_model  # noqa: E402
from hybridtrt.compiler.precision.stage import prepare_model  # noqa: E402
from hybridtrt.config import TensorRTConfig  # noqa: E402
from hybridtrt.converters.registry import REGISTRY  # noqa: E402
from hybridtrt.errors import HybridTRTError  # noqa: E402
from hybridtrt.trt.api import BuildSpec, TensorRTFailure, TrtBackend  # noqa: E402
from hybridtrt.trt.backends import load_backend  # noqa: E402
from hybridtrt.trt.library import RTX  # noqa: E402
from tests.suites import Case, backend_node_cases  # noqa: E402

__all__ = [
    "BUILDS", "BUILD", "CRASH", "KEPT_OUT", "PARSE", "TIMEOUT",
    "Row", "Rtx", "Rules", "agreement", "collect", "counts_table", "freeze", "judge", "main",
    "one_node_cases", "probe", "render", "run", "short", "write_docs",
]

BUILDS, PARSE, BUILD = "builds", "fails at parse", "fails at build"
CRASH, TIMEOUT = "crashed", "timed out"
SPEC = BuildSpec(profiles=(), workspace_size=1 << 28, optimization_level=3, strip_weights=False,
                 compute_capabilities=("8.9",))
DOCS = ROOT / "docs" / "RTX_AGREEMENT.md"
COMMAND = "python benchmarks/rtx_agreement.py --write-docs"
_RECYCLE = 300  # cases per worker process before a fresh one (bounds what TensorRT leaks)
_FROZEN = " (shape inputs as constants)"
KEPT_OUT = "rules yes, convert keeps out (shape inputs fed from outside the engine)"
_NOISE = re.compile(r"cudaError 35|^node \d+ \([^)]*\): ")  # a CPU-only machine's CUDA error


@dataclasses.dataclass(frozen=True)
class Rules:
    """The rule registry's verdict for a case's node.

    Attributes:
        supported: Whether the registry sends the node to TensorRT.
        reason: Why not (empty when supported).
        float64: Whether an input or output of the node is float64.
        shape_inputs: Inputs its rule declares as shape tensors that this case feeds from graph
            inputs (``convert``'s cluster filter keeps such a node out of TensorRT).
    """

    supported: bool
    reason: str
    float64: bool = False
    shape_inputs: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Rtx:
    """TensorRT-RTX's answer: ``stage`` is one of BUILDS, PARSE, BUILD, CRASH, TIMEOUT."""

    stage: str
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Row:
    """One case: the registry's verdict and TensorRT-RTX's answer.

    ``frozen`` is TensorRT-RTX's answer with ``rules.shape_inputs`` made initializers holding the
    case's input values (None when there are none), as a convert would hand them to TensorRT.
    """

    case: str
    op_type: str
    rules: Rules
    rtx: Rtx
    frozen: Rtx | None = None

    @property
    def in_tensorrt(self) -> bool:
        """Whether ``convert`` puts the node in an engine: the rules accept it, and no declared
        shape input comes from outside (its cluster filter keeps such a node out)."""
        return self.rules.supported and not self.rules.shape_inputs

    @property
    def disagrees(self) -> bool:
        return self.in_tensorrt != (self.rtx.stage == BUILDS) and not (
            self.rules.supported and self.rules.shape_inputs)

    @property
    def category(self) -> str:
        if self.rules.supported and self.rules.shape_inputs:
            return KEPT_OUT
        rules = "rules yes" if self.rules.supported else "rules no"
        if self.rules.supported or self.rtx.stage == BUILDS:
            suffix = " (float64)" if not self.rules.supported and self.rules.float64 else ""
            return f"{rules} & RTX {self.rtx.stage}{suffix}"
        return f"{rules} & RTX fails"


def judge(model: onnx.ModelProto) -> Rules:
    """The registry's verdict for the first node, asked as ``convert`` asks it."""
    try:
        loaded = prepare_model(load_model(model), TensorRTConfig())
    except HybridTRTError as exc:
        return Rules(False, f"load_model refuses the model: {exc}")
    index = GraphIndex(loaded.model, loaded.inferred)
    verdict = judge_graph(index, REGISTRY.for_library(RTX)).verdicts[0]
    node = index.nodes[0]
    names = [n for n in (*node.input, *node.output) if n]
    float64 = any(index.info(n).dtype == TensorProto.DOUBLE for n in names)
    domain = "" if node.domain == "ai.onnx" else node.domain
    found = REGISTRY.find(node.op_type, domain, index.opsets.get(domain, 1))
    fed = {v.name for v in model.graph.input} - {t.name for t in model.graph.initializer}
    shape = tuple(node.input[i] for i in (found.shape_inputs if found else ())
                  if i < len(node.input) and node.input[i] in fed)
    return Rules(verdict.supported, verdict.reason, float64, shape)


def probe(backend: TrtBackend, model: bytes) -> Rtx:
    """Ask TensorRT's parser about a one-node model, then build it."""
    try:
        verdict = backend.parse_support(model)
    except TensorRTFailure as exc:
        return Rtx(PARSE, str(exc))
    refused = 0 not in verdict.supported
    if refused and 0 in verdict.reasons:
        return Rtx(PARSE, verdict.reasons[0])
    try:  # also when refused naming no node: parse's own errors then say why
        backend.build(model, SPEC, lambda _: None)
    except TensorRTFailure as exc:
        # The build parses first; the parser's errors name a node, or "model" (tensorrt_build).
        refused_by_parser = refused or exc.node is not None or str(exc).startswith("model: ")
        return Rtx(PARSE if refused_by_parser else BUILD, str(exc))
    if refused:
        return Rtx(PARSE, "supports_model_v2 refuses the model, naming no node (parse and "
                          "build succeed)")
    return Rtx(BUILDS)


def agreement(case: Case, backend: TrtBackend) -> Row:
    """Both answers for one case, in this process (the harness's core, without isolation)."""
    rules = judge(case.model)
    return Row(case.name, case.model.graph.node[0].op_type, rules,
               probe(backend, case.model.SerializeToString()))


def _serve(conn: Connection) -> None:
    """Worker: answer ``(name, model bytes)`` with ``(name, Rtx)`` until sent None."""
    backend, why = load_backend(RTX)
    while (item := conn.recv()) is not None:
        name, model = item
        conn.send((name, probe(backend, model) if backend is not None else Rtx(CRASH, why)))


class _Worker:
    """One worker process and the case it is on."""

    def __init__(self, context: SpawnContext) -> None:
        self.conn, child = context.Pipe()
        self.process: SpawnProcess = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.case: str | None = None
        self.since = 0.0
        self.served = 0

    def give(self, name: str, model: bytes) -> None:
        self.conn.send((name, model))
        self.case, self.since, self.served = name, time.monotonic(), self.served + 1

    def answer(self, ready: bool, timeout: float) -> Rtx | None:
        """The current case's answer, a crash or a timeout; None while it is still working."""
        if ready:
            try:
                _, rtx = self.conn.recv()
                return rtx if isinstance(rtx, Rtx) else Rtx(CRASH, f"worker sent {rtx!r}")
            except (EOFError, OSError):  # the worker died mid-case (a segfault, say)
                self.process.join(5)
                return Rtx(CRASH, f"worker died (exit code {self.process.exitcode})")
        if time.monotonic() - self.since > timeout:
            self.stop()
            return Rtx(TIMEOUT, f"no answer within {timeout:.0f} s")
        return None

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def run(items: Sequence[tuple[str, bytes]], jobs: int = 2, timeout: float = 60.0,
        progress: Callable[[int], None] = lambda done: None) -> dict[str, Rtx]:
    """``probe`` every ``(name, model bytes)`` in ``jobs`` worker processes, each case bounded."""
    context = multiprocessing.get_context("spawn")
    queue = collections.deque(items)
    answers: dict[str, Rtx] = {}
    workers = [_Worker(context) for _ in range(max(1, min(jobs, len(items))))]
    for worker in workers:
        if queue:
            worker.give(*queue.popleft())
    while any(w.case is not None for w in workers):
        busy = [w for w in workers if w.case is not None]
        ready = wait([w.conn for w in busy], timeout=1.0)
        for k, worker in enumerate(workers):
            if worker.case is None:
                continue
            rtx = worker.answer(worker.conn in ready, timeout)
            if rtx is None:
                continue
            answers[worker.case] = rtx
            worker.case = None
            progress(len(answers))
            if rtx.stage in (CRASH, TIMEOUT) or worker.served >= _RECYCLE:
                worker.stop()
                worker = workers[k] = _Worker(context)
            if queue:
                worker.give(*queue.popleft())
    for worker in workers:
        worker.stop()
    return answers


def one_node_cases(filter_text: str = "", limit: int | None = None) -> Iterator[Case]:
    """The backend suite's cases whose main graph has exactly one node."""
    count = 0
    for case in backend_node_cases():
        if len(case.model.graph.node) != 1 or filter_text not in case.name:
            continue
        if limit is not None and count >= limit:
            return
        count += 1
        yield case


def freeze(case: Case, names: Sequence[str]) -> onnx.ModelProto:
    """The case's model with inputs ``names`` turned into initializers of the case's values."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    model.ir_version = max(model.ir_version, 4)  # initializers need not be graph inputs
    kept = [v for v in model.graph.input if v.name not in names]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model.graph.initializer.extend(
        numpy_helper.from_array(np.asarray(case.inputs[n]), n) for n in names)
    return model


def collect(cases: Iterable[Case], jobs: int, timeout: float) -> list[Row]:
    """Judge every case here and probe it (and its frozen variant) in the workers."""
    judged: list[tuple[Case, Rules]] = [(case, judge(case.model)) for case in cases]
    items = [(case.name, case.model.SerializeToString()) for case, _ in judged]
    items += [(case.name + _FROZEN, freeze(case, rules.shape_inputs).SerializeToString())
              for case, rules in judged if rules.shape_inputs]
    total = len(items)

    def progress(done: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"  {done}/{total} models probed", file=sys.stderr, flush=True)

    answers = run(items, jobs, timeout, progress)
    return [Row(case.name, case.model.graph.node[0].op_type, rules, answers[case.name],
                answers.get(case.name + _FROZEN)) for case, rules in judged]


_ORDER = (
    f"rules yes & RTX {BUILDS}", f"rules yes & RTX {PARSE}", f"rules yes & RTX {BUILD}",
    f"rules yes & RTX {CRASH}", f"rules yes & RTX {TIMEOUT}", f"rules no & RTX {BUILDS}",
    f"rules no & RTX {BUILDS} (float64)", "rules no & RTX fails", KEPT_OUT,
)


_FED_BUILDS = "(of those kept out: RTX builds them with the shape inputs as constants)"
_FED_FAILS = "(of those kept out: RTX fails with the shape inputs as constants too)"


def short(text: str, width: int = 150) -> str:
    """TensorRT's message on one line, without the no-GPU CUDA error every failure here logs."""
    lines = [_NOISE.sub("", line).strip() for line in text.splitlines()
             if "cudaError 35" not in line]
    flat = " ".join(line for line in lines if line) or text.strip()
    return flat if len(flat) <= width else flat[:width - 3] + "..."


def _shape_note(row: Row) -> str:
    if row.rules.shape_inputs and row.frozen is not None:
        then = row.frozen.stage if row.frozen.stage == BUILDS else (
            f"{row.frozen.stage}: {short(row.frozen.message, 100)}")
        return (f" [declared shape input(s) {', '.join(row.rules.shape_inputs)} fed by graph "
                f"inputs, which convert keeps out; as constants: {then}]")
    if re.match(r"input\(s\) \[.*\] are shape tensors", row.rtx.message):
        return " [NOT a declared shape input of the rule]"
    return ""


def counts_table(rows: Sequence[Row], markdown: bool) -> list[str]:
    """The count of cases in each category (zero rows kept for the five main ones)."""
    counts = collections.Counter(row.category for row in rows)
    shown = [c for c in _ORDER if counts[c] or CRASH not in c and TIMEOUT not in c]
    fed = [r for r in rows if r.category == KEPT_OUT and r.frozen]
    counts[_FED_BUILDS] = sum(r.frozen is not None and r.frozen.stage == BUILDS for r in fed)
    counts[_FED_FAILS] = len(fed) - counts[_FED_BUILDS]
    shown += [_FED_BUILDS, _FED_FAILS]
    if markdown:
        return (["| category | cases |", "|---|---:|"] + [f"| {c} | {counts[c]} |" for c in shown]
                + [f"| all one-node cases | {len(rows)} |"])
    width = max(len(c) for c in shown)
    return ([f"{'category':<{width}} {'cases':>6}"]
            + [f"{c:<{width}} {counts[c]:>6}" for c in shown]
            + [f"{'all one-node cases':<{width}} {len(rows):>6}"])


def _grouped(rows: Sequence[Row], key: Callable[[Row], str]) -> list[str]:
    """Per op type, one bullet per distinct message with the cases that share it."""
    lines: list[str] = []
    by_op: dict[str, list[Row]] = collections.defaultdict(list)
    for row in rows:
        by_op[row.op_type].append(row)
    for op in sorted(by_op):
        lines.append(f"- **{op}** ({len(by_op[op])} case(s))")
        by_text: dict[str, list[str]] = collections.defaultdict(list)
        for row in by_op[op]:
            by_text[key(row)].append(row.case)
        for text, names in by_text.items():
            lines.append(f"  - {text} -- {', '.join(names)}")
    return lines or ["- none"]


def render(rows: Sequence[Row], markdown: bool = False) -> str:
    """Counts table, then the disagreements by op type."""
    yes_fails = [r for r in rows if r.in_tensorrt and r.rtx.stage != BUILDS]
    no_builds = [r for r in rows if not r.rules.supported and r.rtx.stage == BUILDS]
    lines = counts_table(rows, markdown)
    lines += ["", "## Rules say yes, TensorRT-RTX fails", ""]
    lines += _grouped(yes_fails, lambda r: f"{r.rtx.stage}: {short(r.rtx.message)}{_shape_note(r)}")
    lines += ["", "## Rules say no, TensorRT-RTX builds (not float64)", ""]
    lines += _grouped([r for r in no_builds if not r.rules.float64],
                      lambda r: f"rules: {short(r.rules.reason)}")
    lines += ["", "## Rules say no, TensorRT-RTX builds, float64 (kept no: TensorRT computes "
              "float64 in float32)", ""]
    lines += _grouped([r for r in no_builds if r.rules.float64],
                      lambda r: f"rules: {short(r.rules.reason)}")
    return "\n".join(lines)


def write_docs(rows: Sequence[Row], version: str, path: Path = DOCS) -> None:
    """docs/RTX_AGREEMENT.md: generated, with the command that regenerates it."""
    header = [
        "# hybridtrt's op rules against TensorRT-RTX",
        "",
        f"Generated by `{COMMAND}`; do not edit by hand.",
        "",
        f"Every one-node case of ONNX's backend node suite (onnx {onnx.__version__}): the rule "
        "registry's verdict (`judge_graph`) against TensorRT-RTX "
        f"{version}'s ONNX parser (`supports_model_v2`, `parse`) and its ahead-of-time build "
        "for compute capability 8.9, run without a GPU. A shape-tensor input counts as a build "
        "failure; where the op's rule declares that input a shape input, the case is probed "
        "again with it as a constant (convert keeps a node whose shape input comes from "
        "outside its engine in ONNX Runtime). Messages are TensorRT's first 150 characters, "
        "less the CUDA-driver error every failure logs on a machine without a GPU.",
        "", "## Counts", "", "",
    ]
    path.write_text("\n".join(header) + render(rows, markdown=True) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="at most N one-node cases")
    parser.add_argument("--filter", default="", help="only cases whose name contains SUBSTR")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case (default 60)")
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOCS.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    backend, why = load_backend(RTX)
    if backend is None:
        print(f"TensorRT-RTX is not usable: {why}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    rows = collect(one_node_cases(args.filter, args.limit), args.jobs, args.timeout)
    seconds = time.perf_counter() - start
    print(render(rows))
    print(f"\n{len(rows)} one-node cases in {seconds:.1f} s with {args.jobs} worker(s)")
    if args.write_docs:
        write_docs(rows, backend.version)
        print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
