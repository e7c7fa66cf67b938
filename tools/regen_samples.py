"""Regenerate the sample outputs of the command line in the README and docs/ by running the real
commands on a small CNN built in code, so the samples cannot go stale.

A sample is the fenced block between ``<!-- sample:NAME -->`` and ``<!-- /sample:NAME -->``;
it shows each command of ``SAMPLES[NAME]`` (``$ hybridtrt ...``) and what it printed.
``tests/test_readme.py`` fails when a block differs from what the commands print now, timings
aside (see ``normalise``).

usage: python tools/regen_samples.py [--check]   (--check: list the stale samples, exit 1)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The commands of each sample, run in one folder in this order, after SETUP.
SETUP = ("hybridtrt convert sample.onnx -o sample.hybrid.onnx --disable-ops Resize -q",)
SAMPLES = {
    "inspect": ("hybridtrt inspect sample.onnx --disable-ops Resize",),
    "bench": ("hybridtrt bench sample.hybrid.onnx --compare ort --iterations 20 "
              "--isolate-engines --json bench.json",),
    "compare": ("hybridtrt compare sample.onnx sample.hybrid.onnx",),
    "profile": ("hybridtrt profile sample.hybrid.onnx --runs 3 --isolate-engines --top 6 "
                "-o sample.trace.json",),
}
# Samples whose table rows are ordered by time: which rows show, and ONNX Runtime's node
# names in them, vary from run to run and with its version; only their columns are checked.
TIMED_ROWS = frozenset({"profile"})

_MARKED = re.compile(r"(<!-- sample:(?P<name>[\w-]+) -->\n```\n)(?P<body>.*?)(```\n<!-- /sample:"
                     r"(?P=name) -->)", re.DOTALL)


def sample_model() -> onnx.ModelProto:
    """A small detector-like CNN: two conv blocks, an upsampling ``Resize``, a skip ``Add`` and
    a conv head with a sigmoid (``--disable-ops Resize`` splits it into two engines)."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    weights = [weight("w0", 16, 3, 3, 3), weight("b0", 16), weight("w1", 16, 16, 3, 3),
               weight("b1", 16), weight("w2", 1, 16, 3, 3), weight("b2", 1),
               numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        node("Relu", ["c0"], ["r0"], name="relu0"),
        node("Conv", ["r0", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
        node("Relu", ["c1"], ["r1"], name="relu1"),
        node("Resize", ["r1", "", "scales"], ["up"], name="upsample", mode="nearest"),
        node("Add", ["up", "r0"], ["s"], name="skip"),
        node("Conv", ["s", "w2", "b2"], ["c2"], name="head", pads=[1, 1, 1, 1]),
        node("Sigmoid", ["c2"], ["y"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "sample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 160, 160])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 160, 160])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    """Run in ``folder`` with TensorRT off, as on the CPU machine the samples describe."""
    here, backend = Path.cwd(), os.environ.get("HYBRIDTRT_BACKEND")
    os.chdir(folder)
    os.environ["HYBRIDTRT_BACKEND"] = "none"
    try:
        yield
    finally:
        os.chdir(here)
        if backend is None:
            os.environ.pop("HYBRIDTRT_BACKEND", None)
        else:
            os.environ["HYBRIDTRT_BACKEND"] = backend


def _run(command: str) -> str:
    """What ``command`` (a ``hybridtrt`` command line) prints on stdout; it must succeed."""
    from hybridtrt.cli import main

    words = shlex.split(command)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(words[1:])
    if status != 0:
        raise RuntimeError(f"{command} exited {status}:\n{err.getvalue()}")
    return out.getvalue()


def run_samples(folder: Path) -> dict[str, str]:
    """Each sample's text: its commands, each after ``$ ``, and what they printed."""
    onnx.save(sample_model(), folder / "sample.onnx")
    with _inside(folder):
        for command in SETUP:
            _run(command)
        return {name: "".join(f"$ {c}\n{_run(c)}" for c in commands)
                for name, commands in SAMPLES.items()}


def marked_blocks(text: str) -> dict[str, str]:
    """The text of each marked sample block of a page, by sample name."""
    return {m.group("name"): m.group("body") for m in _MARKED.finditer(text)}


def rewrite(text: str, samples: Mapping[str, str]) -> str:
    """``text`` with each marked block replaced by its sample's text."""
    unknown = sorted(set(marked_blocks(text)) - set(samples))
    if unknown:
        raise KeyError(f"no sample is named {unknown}; known: {sorted(samples)}")
    return _MARKED.sub(lambda m: m.group(1) + samples[m.group("name")] + m.group(4), text)


def normalise(name: str, text: str) -> str:
    """The sample with what varies from run to run taken out: decimal numbers (timings,
    ratios, memory) become ``#``, the widths of table columns are ignored, and for the samples
    of ``TIMED_ROWS`` every number but the commands' and the rows of their tables go."""
    number = r"\d+(?:\.\d+)?(?:e[-+]?\d+)?" if name in TIMED_ROWS else r"\d+\.\d+(?:e[-+]?\d+)?"
    lines, in_table = [], False
    for line in text.splitlines():
        if line.startswith("$ "):  # the command, as given
            lines.append(" ".join(line.split()))
            continue
        if name in TIMED_ROWS and in_table and line.strip():
            continue
        in_table = bool(re.fullmatch(r"[- ]*-[- ]*", line)) or (in_table and bool(line.strip()))
        line = re.sub(rf"(?<![\w.]){number}(?![\w.])", "#", line)
        lines.append(" ".join(re.sub(r"-{2,}", "--", line).split()))
    return "\n".join(lines)


def stale(pages: list[Path], samples: Mapping[str, str]) -> list[str]:
    """``page: sample`` for each marked block that differs from its sample (``normalise``)."""
    found = []
    for page in pages:
        for name, body in marked_blocks(page.read_text(encoding="utf-8")).items():
            if name not in samples or normalise(name, body) != normalise(name, samples[name]):
                where = page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else page.name
                found.append(f"{where}: {name}")
    return found


def main(argv: list[str] | None = None) -> int:
    """Rewrite the marked blocks of every page (or, with ``--check``, list the stale ones)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list the stale samples")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hybridtrt-samples-") as folder:
        samples = run_samples(Path(folder))
    if args.check:
        old = stale(PAGES, samples)
        print("\n".join(old) if old else "every sample is current")
        return 1 if old else 0
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        if marked_blocks(text):
            page.write_text(rewrite(text, samples), encoding="utf-8")
            print(f"rewrote {page.relative_to(ROOT).as_posix()}: {', '.join(marked_blocks(text))}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # this checkout's hybridtrt, also when it is not installed
    sys.exit(main())
