"""``hybridtrt run``, ``bench``, ``profile``, ``compare`` and ``demo``: the commands that run a
hybrid model, time it, profile it or check it against its original."""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hybridtrt.cli.flags import (add_run_inputs, add_verbosity, json_path, print_result,
                                 tool_inputs, writable)
from hybridtrt.core.report import name_order
from hybridtrt.demo import run_demo
from hybridtrt.errors import ConfigError, SaveError
from hybridtrt.runtime import Config, create_predictor
from hybridtrt.tools.bench import BenchSettings, benchmark
from hybridtrt.tools.compare import compare
from hybridtrt.tools.profile import ProfileSettings, profile
from hybridtrt.tools.target import load_target, make_feeds

__all__ = ["add_demo", "add_run", "add_tools", "bench_command", "compare_command",
           "demo_command", "profile_command", "run_command"]

_JSON_HELP = "the result as JSON: on stdout instead of the tables, or into FILE"


def add_run(commands: Any) -> None:
    """The ``run`` command and its flags."""
    run = commands.add_parser("run", help="run a hybrid model on .npy inputs (random without)")
    run.add_argument("model", help="hybrid model (.onnx written by hybridtrt convert)")
    add_run_inputs(run)
    run.add_argument("--output-dir", type=Path, help="write each output as NAME.npy here")
    run.add_argument("--isolate-engines", action="store_true",
                     help="run fallback engines as their own segments")
    run.add_argument("--allow-rebuild", action="store_true",
                     help="rebuild an engine wider for shapes outside its profiles")
    run.add_argument("--cache-dir", type=Path, help="engine cache (default ~/.cache/hybridtrt)")
    run.add_argument("--require-tensorrt", action="store_true",
                     help="fail if an engine cannot run in TensorRT")
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")


def add_tools(commands: Any) -> None:
    """The ``bench``, ``profile`` and ``compare`` commands and their flags."""
    _add_bench(commands)
    _add_profile(commands)
    _add_compare(commands)


def _add_bench(commands: Any) -> None:
    bench = commands.add_parser("bench", help="time a hybrid (or plain ONNX) model: latency "
                                "percentiles, throughput, memory, time per segment")
    bench.add_argument("model", help="hybrid model, or a plain ONNX model (converted first)")
    add_run_inputs(bench)
    bench.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    timing = bench.add_mutually_exclusive_group()
    timing.add_argument("--iterations", type=int, default=100, help="timed runs (default 100)")
    timing.add_argument("--duration", type=float, metavar="S", help="time runs for S seconds")
    bench.add_argument("--segment-runs", type=int, default=20,
                       help="runs of the per-segment pass (default 20; 0 skips it)")
    bench.add_argument("--compare", choices=["ort"], help="also time plain ONNX Runtime on "
                       "the original model, in this process")
    bench.add_argument("--original", type=Path, help="the original model for --compare ort "
                       "(default: the converted file beside the hybrid, else the hybrid inlined)")
    bench.add_argument("--isolate-engines", action="store_true",
                       help="run fallback engines as their own segments, where TensorRT would")
    bench.add_argument("--cuda-graph", action="store_true",
                       help="time with CUDA graphs where segments allow them (needs --gpu)")
    bench.add_argument("--json", nargs="?", const="-", metavar="FILE",
                       help="everything as JSON: on stdout instead of the tables, or into FILE")


def _add_profile(commands: Any) -> None:
    prof = commands.add_parser("profile", help="per-node and per-layer times as a Chrome trace "
                               "and a top-N table")
    prof.add_argument("model", help="hybrid model, or a plain ONNX model (converted first)")
    add_run_inputs(prof)
    prof.add_argument("--warmup", type=int, default=3, help="unprofiled runs first (default 3)")
    prof.add_argument("--runs", type=int, default=10, help="profiled runs (default 10)")
    prof.add_argument("--top", type=int, default=20, help="rows of the table (default 20)")
    prof.add_argument("--isolate-engines", action="store_true",
                      help="run fallback engines as their own segments, where TensorRT would")
    prof.add_argument("-o", "--output", type=Path,
                      help="trace file (default: MODEL_STEM.trace.json here)")


def _add_compare(commands: Any) -> None:
    comp = commands.add_parser("compare", help="compare a hybrid model with its original and "
                               "find the first diverging segment")
    comp.add_argument("original", type=Path, help="the original ONNX model")
    comp.add_argument("model", help="the hybrid model")
    add_run_inputs(comp)
    comp.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (1e-4)")
    comp.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance (1e-3)")
    comp.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    comp.add_argument("--json", nargs="?", const="-", metavar="FILE", help=_JSON_HELP)


def add_demo(commands: Any) -> None:
    """The ``demo`` command and its flags."""
    demo = commands.add_parser("demo", help="convert, save, load and run a shipped real CNN")
    demo.add_argument("--output-dir", type=Path, help="where to keep the hybrid model")
    demo.add_argument("--model", default="resnet50",
                      help="one of the onnx wheel's light models (default resnet50)")
    add_verbosity(demo)


def run_command(args: argparse.Namespace) -> int:
    """``hybridtrt run``: where each engine ran, and each output's shape and statistics."""
    config = Config(args.model)
    if args.gpu is not None:
        config.enable_use_gpu(0, args.gpu)
    config.isolate_engines(args.isolate_engines)
    config.require_tensorrt(args.require_tensorrt)
    config.allow_rebuild(args.allow_rebuild)
    if args.cache_dir is not None:
        config.set_engine_cache_dir(args.cache_dir)
    shapes, given = tool_inputs(args)
    predictor = create_predictor(config)
    target = load_target(args.model, shapes)
    feeds = make_feeds(target, predictor, shapes, given, args.seed)
    outputs = predictor.run_dict(feeds)
    placements = sorted(predictor.engine_status(), key=lambda p: name_order(p.name))
    for placement in placements:  # (the reasons were warned about once)
        print(f"{placement.name}: {placement.runs_in}")
    for name in sorted(set(feeds) - set(given)):
        print(f"{name}: random {feeds[name].dtype} {list(feeds[name].shape)} (seed {args.seed})")
    for name, value in outputs.items():
        array = np.asarray(value)
        stats = (f" min {array.min():.6g} max {array.max():.6g} mean {array.mean():.6g}"
                 if array.size and array.dtype.kind in "fiu" else "")
        print(f"{name}: {array.dtype} {list(array.shape)}{stats}")
        if args.output_dir is not None:
            _save_output(args.output_dir, name, array)
    return 0


def _save_output(folder: Path, name: str, array: np.ndarray) -> None:
    target = folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".npy")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(target, array)
    except OSError as exc:
        raise SaveError(f"--output-dir: cannot write {target}: {exc.strerror or exc}") from exc
    print(f"  saved {target}")


def bench_command(args: argparse.Namespace) -> int:
    """``hybridtrt bench``: latency, throughput, memory and time per segment."""
    if args.cuda_graph and args.gpu is None:
        raise ConfigError("--cuda-graph needs the GPU: add --gpu N")
    shapes, given = tool_inputs(args)
    settings = BenchSettings(warmup=args.warmup, iterations=args.iterations,
                             duration=args.duration, use_gpu=args.gpu is not None,
                             device_id=args.gpu or 0, isolate_engines=args.isolate_engines,
                             compare_ort=args.compare == "ort", segment_runs=args.segment_runs,
                             cuda_graph=args.cuda_graph)
    writable(json_path(args), "--json")
    result = benchmark(load_target(args.model, shapes, args.original), settings, shapes, given)
    print_result(result, args.json)
    return 0


def profile_command(args: argparse.Namespace) -> int:
    """``hybridtrt profile``: the top-N table, and the Chrome trace written."""
    shapes, given = tool_inputs(args)
    settings = ProfileSettings(warmup=args.warmup, runs=args.runs, use_gpu=args.gpu is not None,
                               device_id=args.gpu or 0, isolate_engines=args.isolate_engines)
    if args.top < 1:
        raise ConfigError(f"--top must be >= 1, got {args.top}")
    output = args.output or Path(f"{Path(args.model).stem}.trace.json")
    writable(output, "-o")
    result = profile(load_target(args.model, shapes), settings, shapes, given)
    print(result.render(args.top))
    try:
        trace = result.write_trace(output)
    except OSError as exc:
        raise SaveError(f"cannot write {output}: {exc}") from exc
    print(f"\nwrote {trace} (open it in https://ui.perfetto.dev or chrome://tracing)")
    return 0


def compare_command(args: argparse.Namespace) -> int:
    """``hybridtrt compare``: 0 when every output agrees, 1 with the first diverging segment."""
    shapes, given = tool_inputs(args)
    writable(json_path(args), "--json")
    target = load_target(args.model, shapes, args.original)
    result = compare(target, args.atol, args.rtol, shapes, given, args.gpu is not None,
                     args.gpu or 0, args.seed)
    print_result(result, args.json)
    return 0 if result.ok else 1


def demo_command(args: argparse.Namespace) -> int:
    """``hybridtrt demo``: convert, save, load and run a shipped CNN, then say how it went."""
    with tempfile.TemporaryDirectory(prefix="hybridtrt-demo-") as scratch:
        result = run_demo(args.output_dir or Path(scratch), args.model)
    print(result.report)
    print("\nwhere each engine ran:")
    for line in result.placements:
        print(f"  {line}")
    print(f"\nsaved {result.saved}" if args.output_dir else
          "\nthe hybrid model was saved in a temporary folder, removed now "
          "(--output-dir DIR keeps it)")
    print(f"max |hybrid - ONNX Runtime on the original| = {result.max_abs_diff:.3g}")
    return 0
