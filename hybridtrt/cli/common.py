"""What the ``hybridtrt`` command line shares: shape and input parsing, messages, exit codes, logs."""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator, Sequence

import numpy as np

from hybridtrt.errors import ConfigError, HybridTRTError, InputError

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "cli_words", "exit_status", "missing_package",
           "parse_shapes", "read_inputs", "setup_logging"]

EXIT_FAILURE = 1  # the model, its inputs or a run failed
EXIT_USAGE = 2  # the command line asked for something wrong (as argparse, trtexec, polygraphy)

# Advice written for Python callers, and what the command line says instead.
_CLI_WORDS = [
    ("or call config.allow_rebuild()", "or add --allow-rebuild"),
    ("call config.allow_rebuild()", "add --allow-rebuild"),
    ("or call config.disable_gpu()", "or drop --gpu"),
    ("call config.disable_gpu()", "drop --gpu"),
    ("call config.enable_use_gpu() or pass a numpy array", "add --gpu N"),
    ("call config.enable_use_gpu() too, or drop config.enable_cuda_graph()",
     "add --gpu N, or drop --cuda-graph"),
    ("an Input(name=..., min_input_shape=..., optim_input_shape=..., max_input_shape=...)",
     "--min-shapes/--opt-shapes/--max-shapes (or --shapes)"),
    ("Input(name=..., min_input_shape=...)", "--min-shapes/--opt-shapes/--max-shapes"),
    ("disable_ops:", "--disable-ops:"),
    ("ops_run_float:", "--ops-run-float:"),
    ("int8_fp32_layers", "--int8-fp32-layers"),
    ("(backend='tensorrt_rtx')", "(--backend tensorrt_rtx)"),
    ("target_compute_capabilities", "--target-cc"),
]


_GPU = "pip install 'hybridtrt[gpu-cu12]' or 'hybridtrt[gpu-cu13]' (your CUDA major)"
# The optional packages we import, and the extra that brings each.
_EXTRAS = {
    "onnxruntime": ("ONNX Runtime", "pip install 'hybridtrt[cpu]' (or, on a GPU host, "
                                    "'hybridtrt[gpu-cu12]' or 'hybridtrt[gpu-cu13]')"),
    "rapidocr_onnxruntime": ("rapidocr-onnxruntime (the PaddleOCR models)",
                             "pip install 'hybridtrt[cpu]'"),
    "PIL": ("Pillow", "pip install 'hybridtrt[cpu]'"),
    "tensorrt": ("TensorRT", _GPU),
    "cuda": ("cuda-python", _GPU),
    "cupy": ("CuPy", _GPU),
    "ray": ("Ray Serve", "pip install 'hybridtrt[serve]'"),
    "fastapi": ("FastAPI (for Ray Serve)", "pip install 'hybridtrt[serve]'"),
}


def missing_package(exc: ModuleNotFoundError) -> str | None:
    """One line naming the extra that installs the missing module (None: not one of ours)."""
    root = (exc.name or "").split(".")[0]
    if root not in _EXTRAS:
        return None
    what, how = _EXTRAS[root]
    return f"{what} is not installed: {how}"


# The same advice as a client of `hybridtrt serve` can act on it.
_CLIENT_WORDS = [
    ("Convert again with a wider Input range, or call config.allow_rebuild()",
     "send shapes within these ranges (the model was converted for them)"),
]


def reworded(text: str, table: Sequence[tuple[str, str]]) -> str:
    """``text`` with each phrase of ``table`` replaced by its counterpart."""
    for said, instead in table:
        text = text.replace(said, instead)
    return text


def cli_words(text: str) -> str:
    """``text`` with Python advice ("call config.allow_rebuild()") said as the CLI's flags."""
    return reworded(text, _CLI_WORDS)


def client_words(text: str) -> str:
    """``text`` with Python advice said as what a serving client may do instead."""
    return reworded(text, _CLIENT_WORDS)


def exit_status(exc: HybridTRTError, inputs_from_flags: bool = False) -> int:
    """2 for a wrong command line or setting, 1 for a failure of the model, inputs or run.

    ``inputs_from_flags``: the command's inputs are only shape flags (convert, inspect), so
    an input error is a usage error there.
    """
    usage = isinstance(exc, ConfigError) or (inputs_from_flags and isinstance(exc, InputError))
    return EXIT_USAGE if usage else EXIT_FAILURE


def _split_items(text: str) -> list[str]:
    """Items separated by commas or spaces, commas inside ``[...]`` kept (polygraphy)."""
    items, depth, current = [], 0, ""
    for char in text:
        depth += (char == "[") - (char == "]")
        if depth == 0 and (char == "," or char.isspace()):
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [i.strip() for i in items if i.strip()]


def _name_and_dims(item: str, flag: str) -> tuple[str, str]:
    if item[:1] in "'\"":  # a quoted name (trtexec): 'x':1x3x224x224
        end = item.find(item[0], 1)
        if end < 0 or item[end + 1:end + 2] != ":":
            raise ConfigError(f"{flag}: '{item}' is not 'NAME':DIMS (e.g. 'x':1x3x224x224)")
        return item[1:end], item[end + 2:]
    if ":[" in item:  # polygraphy: x:[1,3,224,224]
        name, _, dims = item.partition(":[")
        return name, "[" + dims
    name, sep, dims = item.rpartition(":")
    if not sep or not name:
        raise ConfigError(f"{flag}: '{item}' is not NAME:DIMS (e.g. x:1x3x224x224)")
    return name, dims


def _dims(dims: str, item: str, flag: str) -> tuple[int, ...]:
    text = dims[1:-1].replace(",", "x") if dims.startswith("[") and dims.endswith("]") else dims
    try:
        return tuple(int(d) for d in text.split("x")) if text.strip() else ()
    except ValueError as exc:
        raise ConfigError(f"{flag}: '{dims}' in '{item}' is not dims like 1x3x224x224 "
                          "or [1,3,224,224]") from exc


def _commas_between_dims(items: Sequence[str], start: int, flag: str) -> ConfigError:
    """The error for ``x:1,3,224,224``, whose item ``start`` is ``x:1``, the dims after it."""
    name, _, first = items[start].rpartition(":")
    numbers = [first]
    for item in items[start + 1:]:
        if not re.fullmatch(r"\d+", item):
            break
        numbers.append(item)
    return ConfigError(f"{flag}: dims go between 'x' (trtexec) or in brackets (polygraphy), not "
                       f"after commas: write {name}:{'x'.join(numbers)} or "
                       f"{name}:[{','.join(numbers)}]")


def parse_shapes(text: str, flag: str) -> dict[str, tuple[int, ...]]:
    """Parse input shapes as trtexec writes them (``x:1x3x224x224,mask:1x224``, ``'x':1x3``;
    ``name:`` for a scalar) or as polygraphy does (``x:[1,3,224,224]``)."""
    shapes: dict[str, tuple[int, ...]] = {}
    items = _split_items(text)
    for position, item in enumerate(items):
        if re.fullmatch(r"\d+", item) and position:  # x:1,3,224,224: commas between dims
            raise _commas_between_dims(items, position - 1, flag)
        name, dims = _name_and_dims(item, flag)
        shapes[name] = _dims(dims, item, flag)
    return shapes


def read_inputs(items: Sequence[str]) -> dict[str, np.ndarray]:
    """``NAME=FILE.npy`` items as arrays (a one-array ``.npz`` file is read too)."""
    feeds = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or not name or not file:
            raise ConfigError(f"--input '{item}' is not NAME=FILE.npy")
        try:
            loaded = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"--input {name}: cannot read {file} as a .npy array: {exc}") from exc
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
            if name in arrays or len(arrays) == 1:
                loaded = arrays.get(name, next(iter(arrays.values()), None))
            else:
                raise InputError(f"--input {name}: {file} is an .npz archive of {sorted(arrays)} "
                                 f"and none is named '{name}'; give NAME=FILE.npy")
        feeds[name] = loaded
    return feeds


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return cli_words(super().format(record))


class _Once(logging.Filter):
    """Each warning once per process (the same engine's fallback is said by several steps)."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        if text in self._seen:
            return False
        self._seen.add(text)
        return True


@contextlib.contextmanager
def setup_logging(verbose: int, quiet: bool) -> Iterator[None]:
    """Our own logger on stderr while the command runs: warnings (and progress bars) by
    default, ``-v`` stages, ``-vv`` details, ``-q`` errors only; the root logger is left
    alone, so other libraries' INFO lines (ORT's quantizer) stay silent."""
    logger = logging.getLogger("hybridtrt")
    level = logger.level
    # INFO stays enabled on the logger (progress bars follow it); the handler shows less.
    logger.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose > 1 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR if quiet else
                     (logging.DEBUG, logging.INFO, logging.WARNING)[max(0, 2 - verbose)])
    handler.setFormatter(_Formatter("[hybridtrt] %(message)s"))
    handler.addFilter(_Once())
    logger.addHandler(handler)
    # Not to the root logger: ORT's quantizer calls logging.info(), which gives it a handler.
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
