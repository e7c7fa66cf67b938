"""INT8 post-training calibration: the user's samples, ONNX Runtime's calibrators, a range cache.

The original model runs on the samples in ONNX Runtime (``onnxruntime.quantization``'s MinMax,
Entropy or Percentile calibrator) and every calibrated tensor gets a (low, high) range. The ranges
are kept in a JSON cache keyed by the model's content and the method, so a second convert of the
same model does not calibrate again (Paddle keeps its calibration table the same way).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import hashlib
import itertools
import json
import logging
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from hybridtrt.core.external import externalized
from hybridtrt.core.graph import GraphIndex
from hybridtrt.errors import ConfigError, InputError
from hybridtrt.core.format import subgraph_digest
from hybridtrt.progress import progress
from hybridtrt.core.files import write_atomically

__all__ = ["CACHE_FORMAT", "EXAMPLES", "NEEDS_DATA", "Calibration", "calibrate", "examples",
           "model_key", "samples"]

_LOG = logging.getLogger("hybridtrt")
CACHE_FORMAT = 1
NEEDS_DATA = ("precision_mode INT8 needs calibration_data (an iterable of {input name: array} "
              "feeds or a directory of .npz/.npy files), a matching calibration_cache, or a "
              "model that already carries QuantizeLinear/DequantizeLinear nodes")
Range = tuple[float, float]


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Calibrated ranges.

    Attributes:
        ranges: Tensor name -> (low, high).
        method: ``"minmax"``, ``"entropy"`` or ``"percentile"``.
        samples: How many samples were run (0 when the ranges came from the cache).
        from_cache: Whether the ranges were read from ``calibration_cache``.
        examples: The first few samples run (none from the cache), for sensitivity analysis.
    """

    ranges: dict[str, Range]
    method: str
    samples: int
    from_cache: bool
    examples: tuple[dict[str, np.ndarray], ...] = ()


def model_key(model: onnx.ModelProto, method: str) -> str:
    """What a cache entry must match: the model's structure and weights, and the method."""
    return hashlib.sha256(f"{subgraph_digest(model.graph)}:{method}".encode()).hexdigest()


def samples(data: Any, index: GraphIndex) -> Iterator[dict[str, np.ndarray]]:
    """The calibration feeds, each checked against the model's inputs.

    Args:
        data: An iterable of ``{input name: array}``, or a directory of ``.npz`` files (one feed
            each) or of ``.npy`` files (single-input models).
        index: The model.

    Raises:
        ConfigError: ``data`` is neither, or the directory holds no samples.
        InputError: A feed misses an input, names an unknown one, or has the wrong dtype or shape.
    """
    if isinstance(data, (str, Path)):
        feeds: Iterable[Any] = _directory(Path(data), index)
    elif isinstance(data, Mapping) or not isinstance(data, Iterable):
        raise ConfigError("calibration_data must be an iterable of {input name: array} feeds or "
                          f"a directory of .npz/.npy files, got {type(data).__name__}")
    else:
        feeds = data
    expected = [n for n in index.graph_inputs if index.is_tensor_input(n)]
    for k, feed in enumerate(feeds):
        yield _checked(k, feed, expected, index)


def _count(data: Any) -> int | None:
    """How many samples ``data`` holds, when that is known without reading them."""
    if isinstance(data, (str, Path)):
        return sum(len(list(Path(data).glob(pattern))) for pattern in ("*.npz", "*.npy"))
    return len(data) if isinstance(data, Sized) else None


def _directory(folder: Path, index: GraphIndex) -> Iterator[dict[str, np.ndarray]]:
    if not folder.is_dir():
        raise ConfigError(f"calibration_data directory '{folder}' does not exist")
    archives = sorted(folder.glob("*.npz"))
    arrays = sorted(folder.glob("*.npy"))
    if not archives and not arrays:
        raise ConfigError(f"calibration_data directory '{folder}' holds no .npz or .npy files")
    for path in archives:
        yield _read(path, lambda f: dict(np.load(f, allow_pickle=False)))
    if arrays:
        names = [n for n in index.graph_inputs if index.is_tensor_input(n)]
        if len(names) != 1:
            raise ConfigError(f"calibration_data '{folder}': .npy files feed single-input models "
                              f"only; this model has inputs {names}, use .npz files")
        for path in arrays:
            yield {names[0]: _read(path, lambda f: np.load(f, allow_pickle=False))}


def _read(path: Path, read: Callable[[Path], Any]) -> Any:
    """One calibration file, or a ConfigError naming it (pickles are never loaded)."""
    try:
        return read(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"calibration_data file '{path}' cannot be read as NumPy data "
                          f"(pickled arrays are refused): {exc}") from exc


def _checked(k: int, feed: Any, expected: Sequence[str], index: GraphIndex) -> dict[str, np.ndarray]:
    if not isinstance(feed, Mapping):
        raise InputError(f"calibration sample {k} is a {type(feed).__name__}, not a "
                         "{input name: array} dict")
    unknown = sorted(set(feed) - set(expected))
    missing = [n for n in expected if n not in feed]
    if unknown or missing:
        raise InputError(f"calibration sample {k} does not match the model's inputs {expected}: "
                         f"missing {missing}, unknown {unknown}")
    result = {}
    for name in expected:
        value = np.asarray(feed[name])
        info = index.info(name)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(info.dtype) if info.dtype else value.dtype
        if value.dtype != dtype:
            raise InputError(f"calibration sample {k}: input '{name}' has dtype {value.dtype}, "
                             f"the model expects {np.dtype(dtype)}")
        shape = info.shape
        if shape is not None and (len(shape) != value.ndim or any(
                isinstance(d, int) and d != v for d, v in zip(shape, value.shape))):
            raise InputError(f"calibration sample {k}: input '{name}' has shape "
                             f"{list(value.shape)}, the model expects "
                             f"{['?' if not isinstance(d, int) else d for d in shape]}")
        result[name] = value
    return result


def calibrate(
    index: GraphIndex, op_types: Sequence[str], data: Any, method: str, cache: Path | None,
) -> Calibration:
    """Ranges of the inputs and outputs of ``op_types`` nodes, from the cache or a run.

    Raises:
        ConfigError: No calibration data and no matching cache.
        InputError: The samples do not fit the model, or there are none.
    """
    if not any(n.op_type in op_types for n in index.nodes):
        _LOG.info("calibration: the model has no %s node, so nothing to calibrate",
                  "/".join(op_types))
        return Calibration({}, method, 0, from_cache=False)
    key = model_key(index.model, method)
    cached = _read_cache(cache, key) if cache is not None else None
    if cached is not None:
        _LOG.info("calibration: %d ranges read from %s (no calibration run)", len(cached), cache)
        return Calibration(cached, method, 0, from_cache=True)
    if data is None:
        raise ConfigError(NEEDS_DATA)
    feeds = samples(data, index)
    first = next(feeds, None)
    if first is None:
        raise InputError("calibration_data gave no samples; give at least one feed")
    examples: list[dict[str, np.ndarray]] = []
    shown = progress(_keeping(itertools.chain([first], feeds), examples), total=_count(data),
                     desc="calibration", unit="sample")
    ranges, count = _run_calibrator(index, op_types, shown, method)
    if cache is not None:
        _write_cache(cache, key, method, count, ranges)
    return Calibration(ranges, method, count, from_cache=False, examples=tuple(examples))


EXAMPLES = 8  # samples kept for sensitivity analysis


def _keeping(feeds: Iterator[dict[str, np.ndarray]],
             kept: list[dict[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
    for feed in feeds:
        if len(kept) < EXAMPLES:
            kept.append(feed)
        yield feed


def examples(data: Any, index: GraphIndex) -> tuple[dict[str, np.ndarray], ...]:
    """The first few calibration samples (for sensitivity analysis after a cache hit)."""
    if data is None:
        raise ConfigError("int8_fp32_layers needs calibration_data to measure each layer's "
                          "sensitivity (a calibration cache holds only ranges)")
    return tuple(itertools.islice(samples(data, index), EXAMPLES))


def _read_cache(path: Path, key: str) -> dict[str, Range] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("format") != CACHE_FORMAT or data.get("key") != key:
            _LOG.info("calibration cache %s was made for another model or method; "
                      "calibrating again", path)
            return None
        return {name: (float(lo), float(hi)) for name, (lo, hi) in data["ranges"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _LOG.warning("calibration cache %s is unreadable (%s); calibrating again", path, exc)
        return None


def _write_cache(path: Path, key: str, method: str, count: int, ranges: Mapping[str, Range]) -> None:
    text = json.dumps({"format": CACHE_FORMAT, "key": key, "method": method, "samples": count,
                       "ranges": {n: list(r) for n, r in sorted(ranges.items())}}, indent=1)
    write_atomically(path, text.encode())
    _LOG.info("calibration: %d ranges written to %s", len(ranges), path)


class _LogWriter(io.StringIO):
    """Stdout replacement that hands each printed line to the debug log."""

    def write(self, text: str) -> int:
        if text.strip():
            _LOG.debug("onnxruntime calibrator: %s", text.strip())
        return len(text)


def _run_calibrator(
    index: GraphIndex, op_types: Sequence[str], feeds: Iterator[dict[str, np.ndarray]], method: str,
) -> tuple[dict[str, Range], int]:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.count = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            feed = next(feeds, None)
            self.count += feed is not None
            if self.count and self.count % 10 == 0 and feed is not None:
                _LOG.info("calibration: %d samples", self.count)
            return feed

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    reader = Reader()
    with tempfile.TemporaryDirectory(prefix="hybridtrt-calib-") as folder:
        source = Path(folder) / "model.onnx"
        # (weights to a data file one tensor at a time, those left in their source file too)
        onnx.save_model(externalized(index.model, Path(folder), "model.onnx.data"), str(source))
        calibrator = create_calibrator(source, list(op_types),
                                       augmented_model_path=str(Path(folder) / "augmented.onnx"),
                                       calibrate_method=methods[method])
        with contextlib.redirect_stdout(_LogWriter()):  # ORT's calibrators print progress
            calibrator.collect_data(reader)
            computed = calibrator.compute_data()
        del calibrator
    ranges = {name: (float(np.min(d.range_value[0])), float(np.max(d.range_value[1])))
              for name, d in computed.data.items()}
    _LOG.info("calibration (%s): %d samples, %d tensors", method, reader.count, len(ranges))
    return ranges, reader.count
