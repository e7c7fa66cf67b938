"""The flags several commands share (shapes, inputs, output, verbosity), the settings they make,
and how a command prints or writes its result."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from hybridtrt.cli.common import parse_shapes, read_inputs
from hybridtrt.config import Input, TensorRTConfig
from hybridtrt.core.files import write_atomically
from hybridtrt.errors import ConfigError, SaveError

__all__ = ["add_common", "add_output_flags", "add_run_inputs", "add_verbosity", "config",
           "inputs", "json_path", "print_result", "tool_inputs", "writable", "write"]


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-vv``/``-q`` and ``--json [FILE]``, the same on every command."""
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="the result as JSON: on stdout instead of the tables, or into FILE")
    add_verbosity(parser)


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-vv``/``-q``."""
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="-v: each stage; -vv: details")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def _add_shape_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shapes", help="static input shapes, e.g. x:1x3x224x224")
    parser.add_argument("--min-shapes", "--minShapes", help="smallest input shapes, e.g. x:1x3x64x64")
    parser.add_argument("--opt-shapes", "--optShapes", help="shapes to tune for, e.g. x:1x3x320x320")
    parser.add_argument("--max-shapes", "--maxShapes", help="largest input shapes, e.g. x:1x3x640x640")


def add_common(parser: argparse.ArgumentParser, model_help: str) -> None:
    """The model, its shape flags, the partition flags and the output flags (convert, inspect)."""
    parser.add_argument("model", help=model_help)
    _add_shape_flags(parser)
    parser.add_argument("--min-subgraph-size", type=int, default=3,
                        help="smallest cluster worth an engine (default 3)")
    parser.add_argument("--disable-ops", help="op types or node names kept out of TensorRT, A,B")
    add_output_flags(parser)


def add_run_inputs(parser: argparse.ArgumentParser) -> None:
    """``--shapes``, ``--input NAME=FILE.npy``, ``--gpu N`` and verbosity (commands that run)."""
    parser.add_argument("--shapes", help="input shapes for random inputs, e.g. x:1x3x224x224 "
                        "(default: static shapes, else the engines' opt shapes)")
    parser.add_argument("--input", "--inputs", action="append", default=[], dest="input",
                        metavar="NAME=FILE.npy",
                        help="an input from a file instead of random values; repeat for several")
    parser.add_argument("--gpu", type=int, metavar="N", help="run on CUDA device N (default: CPU)")
    add_verbosity(parser)


def inputs(args: argparse.Namespace) -> list[Input]:
    """The ``Input`` ranges the shape flags give (none: the model's own shapes)."""
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


def config(args: argparse.Namespace, **extra: object) -> TensorRTConfig:
    """The ``TensorRTConfig`` of the shape and partition flags, with ``extra`` settings."""
    disabled = [s for s in (args.disable_ops or "").split(",") if s]
    return TensorRTConfig(
        inputs=inputs(args), min_subgraph_size=args.min_subgraph_size,
        disable_ops=disabled, **extra,  # type: ignore[arg-type]
    )


def tool_inputs(args: argparse.Namespace) -> tuple[dict[str, tuple[int, ...]], dict[str, np.ndarray]]:
    """The ``--shapes`` of the random inputs and the ``--input`` arrays."""
    shapes = parse_shapes(args.shapes, "--shapes") if args.shapes else {}
    return shapes, read_inputs(args.input)


def print_result(result: Any, json_to: str | None) -> None:
    """The tables on stdout, or with ``--json`` the JSON there; ``--json FILE`` writes it too."""
    if json_to == "-":
        print(result.to_json())
        return
    print(result.render())
    if json_to is not None:
        write(Path(json_to), result.to_json())
        print(f"\nwrote {json_to}")


def json_path(args: argparse.Namespace) -> Path | None:
    """The file of ``--json FILE`` (None: no ``--json``, or JSON on stdout)."""
    return Path(args.json) if args.json not in (None, "-") else None


def writable(path: Path | None, flag: str) -> None:
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


def write(path: Path, text: str) -> None:
    """Write ``text`` atomically.

    Raises:
        SaveError: The file cannot be written.
    """
    try:
        write_atomically(path, text.encode())
    except OSError as exc:
        raise SaveError(f"cannot write {path}: {exc}") from exc
