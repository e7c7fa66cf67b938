"""The ``hybridtrt`` command line: convert, inspect, run, bench, profile, compare, serve and
demo (trtexec-style shape flags)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridtrt import __version__
from hybridtrt.cli_support import (EXIT_FAILURE, cli_words, exit_status, missing_package,
                                   parse_shapes, read_inputs, setup_logging)
from hybridtrt.compiler.precision.calibration import NEEDS_DATA
from hybridtrt.core.hybrid import load
from hybridtrt.core.loading import read_onnx_file
from hybridtrt.compiler.pipeline import analyze, convert
from hybridtrt.core.report import accuracy_line, name_order
from hybridtrt.config import Input, PrecisionMode, TensorRTConfig
from hybridtrt.errors import ConfigError, HybridTRTError, InputError, SaveError
from hybridtrt.demo import run_demo
from hybridtrt.runtime import Config, create_predictor
from hybridtrt.core.format import format_version
from hybridtrt.tools.bench import BenchSettings, benchmark
from hybridtrt.tools.compare import compare
from hybridtrt.tools.picture import picture_format, render_file, view_of_hybrid, view_of_model
from hybridtrt.tools.profile import ProfileSettings, profile
from hybridtrt.tools.target import load_target, make_feeds
from hybridtrt.core.files import write_atomically

__all__ = ["main", "parse_shapes"]

_DESCRIPTION = ("Partition ONNX models into TensorRT engines and ONNX Runtime segments, save the "
                "hybrid model, and run, time, profile, compare or inspect it. Shapes are written "
                "as trtexec does (x:1x3x224x224, also --minShapes=...) or as polygraphy does "
                "(x:[1,3,224,224]). Exit status: 0 ok, 1 failure, 2 wrong usage.")


def _inputs(args: argparse.Namespace) -> list[Input]:
    ranged = [args.min_shapes, args.opt_shapes, args.max_shapes]
    if args.shapes and any(ranged):
        raise ConfigError("give --shapes (static) or --min/--opt/--max-shapes, not both")
    if args.shapes:
        static = parse_shapes(args.shapes, "--shapes")
        return [Input(name=n, min_input_shape=s, optim_input_shape=s, max_input_shape=s)
                for n, s in static.items()]
    if not any(ranged):
        return []
    if not all(ranged):
        raise ConfigError("--min-shapes, --opt-shapes and --max-shapes go together")
    lo, opt, hi = (parse_shapes(t, f) for t, f in zip(ranged, ("--min-shapes", "--opt-shapes",
                                                              "--max-shapes")))
    if not lo.keys() == opt.keys() == hi.keys():
        raise ConfigError("--min-shapes, --opt-shapes and --max-shapes must name the same inputs")
    return [Input(name=n, min_input_shape=lo[n], optim_input_shape=opt[n],
                  max_input_shape=hi[n]) for n in lo]


def _config(args: argparse.Namespace, **extra: object) -> TensorRTConfig:
    disabled = [s for s in (args.disable_ops or "").split(",") if s]
    return TensorRTConfig(
        inputs=_inputs(args), min_subgraph_size=args.min_subgraph_size,
        disable_ops=disabled, **extra,  # type: ignore[arg-type]
    )


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-vv``/``-q`` and ``--json [FILE]``, the same on every command."""
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="the result as JSON: on stdout instead of the tables, or into FILE")
    _add_verbosity(parser)


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="-v: each stage; -vv: details")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def _add_shape_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shapes", help="static input shapes, e.g. x:1x3x224x224")
    parser.add_argument("--min-shapes", "--minShapes", help="smallest input shapes, e.g. x:1x3x64x64")
    parser.add_argument("--opt-shapes", "--optShapes", help="shapes to tune for, e.g. x:1x3x320x320")
    parser.add_argument("--max-shapes", "--maxShapes", help="largest input shapes, e.g. x:1x3x640x640")


def _add_common(parser: argparse.ArgumentParser, model_help: str) -> None:
    parser.add_argument("model", help=model_help)
    _add_shape_flags(parser)
    parser.add_argument("--min-subgraph-size", type=int, default=3,
                        help="smallest cluster worth an engine (default 3)")
    parser.add_argument("--disable-ops", help="op types or node names kept out of TensorRT, A,B")
    _add_output_flags(parser)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybridtrt", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"hybridtrt {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser("convert", help="convert an ONNX model into a hybrid model")
    _add_convert_args(conv)
    insp = commands.add_parser("inspect", help="show what runs in TensorRT and why the rest does not")
    _add_common(insp, "ONNX model, or a hybrid model")
    insp.add_argument("--html", type=Path, metavar="OUT.html",
                      help="also draw the graph, each node coloured by where it runs, as a page")
    insp.add_argument("--svg", type=Path, metavar="OUT.svg", help="the same picture as an SVG")
    run = commands.add_parser("run", help="run a hybrid model on .npy inputs (random without)")
    run.add_argument("model", help="hybrid model (.onnx written by hybridtrt convert)")
    _add_run_inputs(run)
    run.add_argument("--output-dir", type=Path, help="write each output as NAME.npy here")
    run.add_argument("--isolate-engines", action="store_true",
                     help="run fallback engines as their own segments")
    run.add_argument("--allow-rebuild", action="store_true",
                     help="rebuild an engine wider for shapes outside its profiles")
    run.add_argument("--cache-dir", type=Path, help="engine cache (default ~/.cache/hybridtrt)")
    run.add_argument("--require-tensorrt", action="store_true",
                     help="fail if an engine cannot run in TensorRT")
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    _add_tool_commands(commands)
    _add_serve_command(commands)
    demo = commands.add_parser("demo", help="convert, save, load and run a shipped real CNN")
    demo.add_argument("--output-dir", type=Path, help="where to keep the hybrid model")
    demo.add_argument("--model", default="resnet50",
                      help="one of the onnx wheel's light models (default resnet50)")
    _add_verbosity(demo)
    for sub in commands.choices.values():  # an unknown option prints that command's usage
        sub.set_defaults(usage_parser=sub)
    return parser


def _add_convert_args(conv: argparse.ArgumentParser) -> None:
    _add_common(conv, "ONNX model")
    conv.add_argument("-o", "--output", required=True, help="hybrid model file or directory")
    conv.add_argument("--precision", default="fp32", choices=[m.value for m in PrecisionMode],
                      help="precision of the engines (default fp32)")
    conv.add_argument("--ops-run-float", help="op types or node names kept FP32 in FP16/BF16, A,B")
    conv.add_argument("--no-precision-guard", action="store_true",
                      help="do not keep fragile nodes (overflow, long reductions) in FP32")
    conv.add_argument("--accuracy-tolerance", metavar="TOL|NAME=TOL[,NAME=TOL...]",
                      help="FP16/BF16: relative L2 error each engine output may have against "
                           "FP32 on the warm-up inputs (default 1e-2), or per output")
    conv.add_argument("--no-accuracy-check", action="store_true",
                      help="FP16/BF16: do not check engines against FP32 (nor keep the nodes "
                           "that break them in FP32)")
    conv.add_argument("--strict-accuracy", action="store_true",
                      help="FP16/BF16: fail when an engine errs beyond the tolerance instead "
                           "of keeping the nodes responsible in FP32")
    conv.add_argument("--calibration-data", type=Path,
                      help="INT8: directory of .npz feeds (or .npy for one-input models)")
    conv.add_argument("--calibration-method", default="percentile",
                      choices=["percentile", "minmax", "entropy"],
                      help="INT8: how activation ranges are chosen (default percentile)")
    conv.add_argument("--calibration-cache", type=Path, help="INT8: JSON cache of ranges")
    conv.add_argument("--int8-fp32-layers", type=int, default=0, metavar="N",
                      help="INT8: keep the N layers quantization hurts most in FP32 "
                           "(sensitivity analysis on the calibration data)")
    conv.add_argument("--workspace-mib", type=int, default=1024, help="builder workspace (MiB)")
    conv.add_argument("--optimization-level", type=int, default=3, help="builder level 0..5")
    conv.add_argument("--strict", action="store_true",
                      help="fail when TensorRT refuses a cluster (default: bisect it)")
    conv.add_argument("--cache-dir", type=Path, help="engine cache (default ~/.cache/hybridtrt)")
    conv.add_argument("--full-plans", action="store_true",
                      help="store full plans instead of weight-stripped ones")
    conv.add_argument("--hardware-compatibility", default="none",
                      choices=["none", "ampere_plus", "same_compute_capability"],
                      help="GPUs the engines may run on besides the building one (default none)")
    conv.add_argument("--gpu", type=int, default=0, dest="device", metavar="N",
                      help="CUDA device that builds (default 0)")
    conv.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "tensorrt_rtx"],
                      help="TensorRT library that builds (default auto: TensorRT, else "
                           "TensorRT-RTX)")
    conv.add_argument("--target-cc", metavar="CC[,CC...]",
                      help="TensorRT-RTX: compute capabilities to build for, e.g. 8.6,8.9 "
                           "(default: the GPU here, or every one RTX runs on)")
    conv.add_argument("--device", type=int, dest="device", help=argparse.SUPPRESS)  # (old name)
    conv.add_argument("--external-data", action="store_true",
                      help="store weights in a .data file next to the model")


def _add_run_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shapes", help="input shapes for random inputs, e.g. x:1x3x224x224 "
                        "(default: static shapes, else the engines' opt shapes)")
    parser.add_argument("--input", "--inputs", action="append", default=[], dest="input",
                        metavar="NAME=FILE.npy",
                        help="an input from a file instead of random values; repeat for several")
    parser.add_argument("--gpu", type=int, metavar="N", help="run on CUDA device N (default: CPU)")
    _add_verbosity(parser)


def _add_tool_commands(commands: Any) -> None:
    bench = commands.add_parser("bench", help="time a hybrid (or plain ONNX) model: latency "
                                "percentiles, throughput, memory, time per segment")
    bench.add_argument("model", help="hybrid model, or a plain ONNX model (converted first)")
    _add_run_inputs(bench)
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
    prof = commands.add_parser("profile", help="per-node and per-layer times as a Chrome trace "
                               "and a top-N table")
    prof.add_argument("model", help="hybrid model, or a plain ONNX model (converted first)")
    _add_run_inputs(prof)
    prof.add_argument("--warmup", type=int, default=3, help="unprofiled runs first (default 3)")
    prof.add_argument("--runs", type=int, default=10, help="profiled runs (default 10)")
    prof.add_argument("--top", type=int, default=20, help="rows of the table (default 20)")
    prof.add_argument("--isolate-engines", action="store_true",
                      help="run fallback engines as their own segments, where TensorRT would")
    prof.add_argument("-o", "--output", type=Path,
                      help="trace file (default: MODEL_STEM.trace.json here)")
    comp = commands.add_parser("compare", help="compare a hybrid model with its original and "
                               "find the first diverging segment")
    comp.add_argument("original", type=Path, help="the original ONNX model")
    comp.add_argument("model", help="the hybrid model")
    _add_run_inputs(comp)
    comp.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (1e-4)")
    comp.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance (1e-3)")
    comp.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    comp.add_argument("--json", nargs="?", const="-", metavar="FILE",
                      help="the result as JSON: on stdout instead of the tables, or into FILE")


def _add_serve_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve a hybrid (or plain ONNX) model on Ray Serve "
                                "over the Open Inference Protocol (KServe v2 REST)")
    serve.add_argument("model", help="hybrid model, or a plain ONNX model (converted first)")
    serve.add_argument("--name", help="the model's name in the URLs (default: the file's stem)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.add_argument("--replicas", type=int, default=1, help="replicas, each with its own "
                       "Predictor (default 1)")
    serve.add_argument("--gpus-per-replica", type=float, default=0.0,
                       help="GPUs Ray gives each replica (default 0: the CPU)")
    serve.add_argument("--max-batch-size", type=int, default=8,
                       help="most rows a batch run takes; the engines' profiles may cap it "
                            "lower (default 8)")
    serve.add_argument("--batch-wait-ms", type=float, default=5.0,
                       help="how long to wait for requests to fill a batch (default 5)")
    serve.add_argument("--max-ongoing-requests", type=int, default=16,
                       help="requests a replica works on at once (default 16)")
    serve.add_argument("--max-queued-requests", type=int,
                       help="requests waiting beyond those; more get 503 (default 4x ongoing)")
    serve.add_argument("--concurrent-batches", type=int, default=1,
                       help="batches a replica runs at once, each on its own Predictor clone "
                            "(default 1)")
    serve.add_argument("--address", help="join this Ray cluster (ray://HOST:10001, or auto) "
                       "instead of starting a local one")
    _add_verbosity(serve)


def _print_result(result: Any, json_to: str | None, render: Any = None) -> None:
    """The tables on stdout, or with ``--json`` the JSON there; ``--json FILE`` writes it too."""
    if json_to == "-":
        print(result.to_json())
        return
    print(render() if render is not None else result.render())
    if json_to is not None:
        _write(Path(json_to), result.to_json())
        print(f"\nwrote {json_to}")


def _json_path(args: argparse.Namespace) -> Path | None:
    return Path(args.json) if args.json not in (None, "-") else None


def _check_precision_flags(args: argparse.Namespace) -> None:
    """INT8-only flags given without ``--precision int8`` are a mistake, not a no-op."""
    if args.precision == "int8":
        return
    given = [flag for flag, value in (("--calibration-data", args.calibration_data),
                                      ("--calibration-cache", args.calibration_cache),
                                      ("--int8-fp32-layers", args.int8_fp32_layers))
             if value]
    if given:
        raise ConfigError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for "
                          f"--precision int8 (this is --precision {args.precision}): add "
                          "--precision int8, or drop them")


def _convert(args: argparse.Namespace) -> int:
    _check_precision_flags(args)
    _writable(_json_path(args), "--json")
    config = _config(args, precision_mode=args.precision,
                     workspace_size=args.workspace_mib << 20,
                     optimization_level=args.optimization_level, strict=args.strict,
                     cache_dir=args.cache_dir, strip_weights=not args.full_plans,
                     hardware_compatibility=args.hardware_compatibility, device_id=args.device,
                     ops_run_float=[s for s in (args.ops_run_float or "").split(",") if s],
                     precision_guard=not args.no_precision_guard,
                     accuracy_check=not args.no_accuracy_check,
                     accuracy_tolerance=_tolerance_flag(args.accuracy_tolerance),
                     strict_accuracy=args.strict_accuracy,
                     calibration_data=str(args.calibration_data) if args.calibration_data else None,
                     calibration_method=args.calibration_method,
                     calibration_cache=args.calibration_cache,
                     int8_fp32_layers=args.int8_fp32_layers, backend=args.backend,
                     target_compute_capabilities=[c for c in (args.target_cc or "").split(",")
                                                  if c])
    try:
        hybrid = convert(args.model, config)
    except ConfigError as exc:
        if str(exc) != NEEDS_DATA:
            raise
        raise ConfigError("--precision int8 needs --calibration-data DIR (a directory of .npz "
                          "feeds, or .npy files for one-input models), a matching "
                          "--calibration-cache FILE, or a model that already carries "
                          "QuantizeLinear/DequantizeLinear nodes") from exc
    path = hybrid.save(args.output, external_data=True if args.external_data else None)
    report = hybrid.report()
    _print_result(report, args.json)
    guarded = [accuracy_line(e) for e in report.engines if e.accuracy_demoted]
    if guarded:  # one line per engine the accuracy guard changed, and its time
        seconds = hybrid.stage_seconds.get("accuracy guard", 0.0)
        print("\n" + "\n".join(guarded) + f"\naccuracy guard: {seconds:.2f} s in all",
              file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json != "-":
        print(f"\nsaved {path}")
    return 0


def _tolerance_flag(text: str | None) -> float | dict[str, float] | None:
    """``--accuracy-tolerance``: one number, or NAME=TOL pairs separated by commas."""
    if text is None:
        return None
    try:
        if "=" not in text:
            return float(text)
        pairs = [item.rpartition("=") for item in text.split(",") if item]
        return {name: float(value) for name, _, value in pairs}
    except ValueError as exc:
        raise ConfigError(f"--accuracy-tolerance takes a number (1e-2) or NAME=TOL pairs "
                          f"separated by commas (probs=1e-2,boxes=5e-2), got {text!r}") from exc


def _inspect(args: argparse.Namespace) -> int:
    hybrid = format_version(read_onnx_file(args.model, load_weights=False)) is not None
    pictures = [p for p in (args.html, args.svg) if p is not None]
    for picture in pictures:
        picture_format(picture)  # a wrong suffix fails before any work
    _writable(_json_path(args), "--json")
    if not pictures:
        _print_result(load(args.model).report() if hybrid else analyze(args.model, _config(args)),
                      args.json)
        return 0
    view = view_of_hybrid(load(args.model)) if hybrid else view_of_model(args.model, _config(args))
    _print_result(view.report, args.json)
    for picture in pictures:
        written = render_file(view, picture)
        print(f"\nwrote {written}", file=sys.stderr if args.json == "-" else sys.stdout)
    return 0


def _demo(args: argparse.Namespace) -> int:
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


def _run(args: argparse.Namespace) -> int:
    config = Config(args.model)
    if args.gpu is not None:
        config.enable_use_gpu(0, args.gpu)
    config.isolate_engines(args.isolate_engines)
    config.require_tensorrt(args.require_tensorrt)
    config.allow_rebuild(args.allow_rebuild)
    if args.cache_dir is not None:
        config.set_engine_cache_dir(args.cache_dir)
    shapes, given = _tool_inputs(args)
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
            target = args.output_dir / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".npy")
            try:
                args.output_dir.mkdir(parents=True, exist_ok=True)
                np.save(target, array)
            except OSError as exc:
                raise SaveError(f"--output-dir: cannot write {target}: {exc.strerror or exc}") from exc
            print(f"  saved {target}")
    return 0


def _writable(path: Path | None, flag: str) -> None:
    """Fail before any work when ``path`` cannot be written (not after a long run)."""
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; give a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {path}: {parent} is a file, not a directory")
            break


def _write(path: Path, text: str) -> None:
    try:
        write_atomically(path, text.encode())
    except OSError as exc:
        raise SaveError(f"cannot write {path}: {exc}") from exc


def _tool_inputs(args: argparse.Namespace) -> tuple[dict[str, tuple[int, ...]], dict[str, np.ndarray]]:
    shapes = parse_shapes(args.shapes, "--shapes") if args.shapes else {}
    return shapes, read_inputs(args.input)


def _bench(args: argparse.Namespace) -> int:
    if args.cuda_graph and args.gpu is None:
        raise ConfigError("--cuda-graph needs the GPU: add --gpu N")
    shapes, given = _tool_inputs(args)
    settings = BenchSettings(warmup=args.warmup, iterations=args.iterations,
                             duration=args.duration, use_gpu=args.gpu is not None,
                             device_id=args.gpu or 0, isolate_engines=args.isolate_engines,
                             compare_ort=args.compare == "ort", segment_runs=args.segment_runs,
                             cuda_graph=args.cuda_graph)
    _writable(_json_path(args), "--json")
    result = benchmark(load_target(args.model, shapes, args.original), settings, shapes, given)
    _print_result(result, args.json)
    return 0


def _profile(args: argparse.Namespace) -> int:
    shapes, given = _tool_inputs(args)
    settings = ProfileSettings(warmup=args.warmup, runs=args.runs, use_gpu=args.gpu is not None,
                               device_id=args.gpu or 0, isolate_engines=args.isolate_engines)
    if args.top < 1:
        raise ConfigError(f"--top must be >= 1, got {args.top}")
    output = args.output or Path(f"{Path(args.model).stem}.trace.json")
    _writable(output, "-o")
    result = profile(load_target(args.model, shapes), settings, shapes, given)
    print(result.render(args.top))
    try:
        trace = result.write_trace(output)
    except OSError as exc:
        raise SaveError(f"cannot write {output}: {exc}") from exc
    print(f"\nwrote {trace} (open it in https://ui.perfetto.dev or chrome://tracing)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    shapes, given = _tool_inputs(args)
    _writable(_json_path(args), "--json")
    target = load_target(args.model, shapes, args.original)
    result = compare(target, args.atol, args.rtol, shapes, given, args.gpu is not None,
                     args.gpu or 0, args.seed)
    _print_result(result, args.json)
    return 0 if result.ok else 1


def _serve(args: argparse.Namespace) -> int:
    from hybridtrt.serve import ServeSettings
    from hybridtrt.serve.run import serve_until_stopped

    settings = ServeSettings(args.name or Path(args.model).stem, args.replicas,
                             args.gpus_per_replica, args.max_batch_size, args.batch_wait_ms,
                             args.max_ongoing_requests, args.max_queued_requests,
                             args.concurrent_batches)
    serve_until_stopped(args.model, settings, args.host, args.port, args.address,
                        lambda line: print(line, flush=True))
    return 0


_COMMANDS = {"convert": _convert, "inspect": _inspect, "run": _run, "bench": _bench,
             "profile": _profile, "compare": _compare, "serve": _serve, "demo": _demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 wrong usage)."""
    args, unknown = _parser().parse_known_args(argv)
    if unknown:
        args.usage_parser.error(f"unrecognized arguments: {' '.join(unknown)}")  # exits 2
    try:
        with setup_logging(args.verbose, args.quiet):
            return _COMMANDS[args.command](args)
    except HybridTRTError as exc:
        print(f"hybridtrt {args.command}: error: {cli_words(str(exc))}", file=sys.stderr)
        return exit_status(exc, inputs_from_flags=args.command in ("convert", "inspect"))
    except ModuleNotFoundError as exc:
        advice = missing_package(exc)
        if advice is None:
            raise
        print(f"hybridtrt {args.command}: error: {advice}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
