"""``hybridtrt convert`` and ``hybridtrt inspect``: partition a model, build and save it, or show
(and draw) what would run in TensorRT and why the rest does not."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hybridtrt.cli.flags import add_common, config, json_path, print_result, writable
from hybridtrt.compiler.precision.calibration import NEEDS_DATA
from hybridtrt.compiler.pipeline import analyze, convert
from hybridtrt.config import PrecisionMode, TensorRTConfig
from hybridtrt.core.format import format_version
from hybridtrt.core.hybrid import load
from hybridtrt.core.loading import read_onnx_file
from hybridtrt.core.report import accuracy_line
from hybridtrt.errors import ConfigError
from hybridtrt.tools.picture import picture_format, render_file, view_of_hybrid, view_of_model

__all__ = ["add_convert", "add_inspect", "convert_command", "inspect_command"]


def add_convert(commands: Any) -> None:
    """The ``convert`` command and its flags."""
    conv = commands.add_parser("convert", help="convert an ONNX model into a hybrid model")
    add_common(conv, "ONNX model")
    conv.add_argument("-o", "--output", required=True, help="hybrid model file or directory")
    _add_precision_flags(conv)
    _add_build_flags(conv)


def _add_precision_flags(conv: argparse.ArgumentParser) -> None:
    conv.add_argument("--precision", default="fp32", choices=[m.value for m in PrecisionMode],
                      help="precision of the engines (default fp32)")
    conv.add_argument("--ops-run-float", help="op types or node names kept FP32 in FP16/BF16, A,B")
    conv.add_argument("--no-precision-guard", action="store_true",
                      help="do not keep fragile nodes (overflow, long reductions) in FP32")
    conv.add_argument("--accuracy-tolerance", metavar="TOL|NAME=TOL[,NAME=TOL...]",
                      help="FP16/BF16/INT8: relative L2 error each engine output may have "
                           "against FP32 on the warm-up inputs (default 5e-3; INT8 0.2), or "
                           "per output")
    conv.add_argument("--no-accuracy-check", action="store_true",
                      help="FP16/BF16/INT8: do not check engines against FP32 (nor keep the nodes "
                           "that break them in FP32)")
    conv.add_argument("--strict-accuracy", action="store_true",
                      help="FP16/BF16/INT8: fail when an engine errs beyond the tolerance instead "
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


def _add_build_flags(conv: argparse.ArgumentParser) -> None:
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


def add_inspect(commands: Any) -> None:
    """The ``inspect`` command and its flags."""
    insp = commands.add_parser("inspect", help="show what runs in TensorRT and why the rest does not")
    add_common(insp, "ONNX model, or a hybrid model")
    insp.add_argument("--html", type=Path, metavar="OUT.html",
                      help="also draw the graph, each node coloured by where it runs, as a page")
    insp.add_argument("--svg", type=Path, metavar="OUT.svg", help="the same picture as an SVG")


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


def _convert_config(args: argparse.Namespace) -> TensorRTConfig:
    return config(args, precision_mode=args.precision,
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


def convert_command(args: argparse.Namespace) -> int:
    """``hybridtrt convert``: build, save, and print the report."""
    _check_precision_flags(args)
    writable(json_path(args), "--json")
    settings = _convert_config(args)
    try:
        hybrid = convert(args.model, settings)
    except ConfigError as exc:
        if str(exc) != NEEDS_DATA:
            raise
        raise ConfigError("--precision int8 needs --calibration-data DIR (a directory of .npz "
                          "feeds, or .npy files for one-input models), a matching "
                          "--calibration-cache FILE, or a model that already carries "
                          "QuantizeLinear/DequantizeLinear nodes") from exc
    path = hybrid.save(args.output, external_data=True if args.external_data else None)
    report = hybrid.report()
    print_result(report, args.json)
    guarded = [accuracy_line(e) for e in report.engines if e.accuracy_demoted]
    if guarded:  # one line per engine the accuracy guard changed, and its time
        seconds = hybrid.stage_seconds.get("accuracy guard", 0.0)
        print("\n" + "\n".join(guarded) + f"\naccuracy guard: {seconds:.2f} s in all",
              file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json != "-":
        print(f"\nsaved {path}")
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    """``hybridtrt inspect``: the report of a hybrid model, or the partition of a plain one."""
    hybrid = format_version(read_onnx_file(args.model, load_weights=False)) is not None
    pictures = [p for p in (args.html, args.svg) if p is not None]
    for picture in pictures:
        picture_format(picture)  # a wrong suffix fails before any work
    writable(json_path(args), "--json")
    if not pictures:
        print_result(load(args.model).report() if hybrid else analyze(args.model, config(args)),
                     args.json)
        return 0
    view = view_of_hybrid(load(args.model)) if hybrid else view_of_model(args.model, config(args))
    print_result(view.report, args.json)
    for picture in pictures:
        written = render_file(view, picture)
        print(f"\nwrote {written}", file=sys.stderr if args.json == "-" else sys.stdout)
    return 0
