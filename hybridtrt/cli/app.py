"""The ``hybridtrt`` command line: its parser, and the dispatch of each command to its module
with the shared error handling (messages in the CLI's words, exit status 0/1/2)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from hybridtrt import __version__
from hybridtrt.cli.common import (EXIT_FAILURE, cli_words, exit_status, missing_package,
                                  setup_logging)
from hybridtrt.cli.conversion import add_convert, add_inspect, convert_command, inspect_command
from hybridtrt.cli.running import (add_demo, add_run, add_tools, bench_command, compare_command,
                                   demo_command, profile_command, run_command)
from hybridtrt.cli.serving import add_serve, serve_command
from hybridtrt.errors import HybridTRTError

__all__ = ["main", "parser"]

_DESCRIPTION = ("Partition ONNX models into TensorRT engines and ONNX Runtime segments, save the "
                "hybrid model, and run, time, profile, compare or inspect it. Shapes are written "
                "as trtexec does (x:1x3x224x224, also --minShapes=...) or as polygraphy does "
                "(x:[1,3,224,224]). Exit status: 0 ok, 1 failure, 2 wrong usage.")

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "convert": convert_command, "inspect": inspect_command, "run": run_command,
    "bench": bench_command, "profile": profile_command, "compare": compare_command,
    "serve": serve_command, "demo": demo_command,
}


def parser() -> argparse.ArgumentParser:
    """The parser of every command, in the order ``hybridtrt --help`` lists them."""
    top = argparse.ArgumentParser(prog="hybridtrt", description=_DESCRIPTION)
    top.add_argument("--version", action="version", version=f"hybridtrt {__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    for add in (add_convert, add_inspect, add_run, add_tools, add_serve, add_demo):
        add(commands)
    for sub in commands.choices.values():  # an unknown option prints that command's usage
        sub.set_defaults(usage_parser=sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 wrong usage)."""
    args, unknown = parser().parse_known_args(argv)
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
