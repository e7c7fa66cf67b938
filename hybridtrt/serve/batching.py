"""Dynamic batching: which requests may run as one, how many rows the engines take, and the
concatenation and split of their arrays (pure; the server's batch handler uses it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from hybridtrt.runtime.description import NodeArg

__all__ = ["Item", "Layout", "bucket", "concatenate", "group", "layout", "pad", "row_limit",
           "split", "warmup_feeds"]

Profile = Mapping[str, Mapping[str, Sequence[int]]]  # {input: {"min","opt","max": dims}}


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a model batches.

    Attributes:
        batched: Every input and output has a dynamic leading (batch) dimension.
        engines: Per engine, the model inputs it reads directly and its profiles.
    """

    batched: bool
    engines: tuple[tuple[tuple[str, ...], tuple[Profile, ...]], ...] = ()


@dataclasses.dataclass(frozen=True)
class Item:
    """One request in a batch: its feeds, the outputs it wants, and its rows."""

    feeds: Mapping[str, np.ndarray]
    outputs: tuple[str, ...] | None = None

    @property
    def rows(self) -> int:
        """The first feed's leading dim; 1 for a request without one (no feeds, or a 0-d
        first input), which then runs alone."""
        first = np.shape(next(iter(self.feeds.values()))) if self.feeds else ()
        return int(first[0]) if first else 1


def layout(inputs: Sequence[NodeArg], outputs: Sequence[NodeArg],
           engines: Sequence[tuple[Sequence[str], Sequence[Profile]]] = ()) -> Layout:
    """The batching layout of a model from its inputs, outputs and engines' profiles.

    Args:
        inputs: ``Predictor.get_inputs()``.
        outputs: ``Predictor.get_outputs()``.
        engines: Per engine, ``(its input names, its profiles)``; only inputs that are model
            inputs count (the others' shapes are not the requests').
    """
    def dynamic_lead(arg: NodeArg) -> bool:
        return bool(arg.shape) and not (isinstance(arg.shape[0], int) and arg.shape[0] > 0)

    batched = bool(inputs) and all(dynamic_lead(a) for a in [*inputs, *outputs])
    names = {a.name for a in inputs}
    direct = tuple((tuple(n for n in reads if n in names), tuple(profiles))
                   for reads, profiles in engines)
    return Layout(batched, tuple((reads, p) for reads, p in direct if reads and p))


def row_limit(model: Layout, item: Item, max_rows: int) -> int:
    """How many rows a batch of requests shaped like ``item`` may hold: at most ``max_rows``,
    and never past the largest batch dim of an engine profile that holds the other dims (1:
    run it alone, as when its inputs' leading dims differ)."""
    if (not model.batched or any(np.ndim(a) == 0 for a in item.feeds.values())
            or len({a.shape[0] for a in item.feeds.values()}) > 1):
        return 1  # (a 0-d feed, or unequal leading dims: that dim is not one batch dim for all)
    limit = max_rows
    for reads, profiles in model.engines:
        fits = [min(int(p[n]["max"][0]) for n in reads if n in p) for p in profiles
                if _holds_but_rows(p, reads, item.feeds)]
        limit = min(limit, max(fits, default=1))
    return max(limit, 1)


def _holds_but_rows(profile: Profile, reads: Sequence[str],
                    feeds: Mapping[str, np.ndarray]) -> bool:
    """Whether ``profile`` holds the feeds' shapes on every dimension but the first."""
    for name in reads:
        bounds, shape = profile.get(name), feeds[name].shape
        if bounds is None:
            continue
        lo, hi = bounds["min"], bounds["max"]
        if len(shape) != len(lo) or any(not a <= d <= b for d, a, b in
                                        zip(shape[1:], lo[1:], hi[1:])):
            return False
    return True


def _key(item: Item) -> Hashable:
    """Requests of one key may be concatenated: same inputs, dtypes, dims but the first, and
    the same outputs asked for."""
    return (tuple((n, a.dtype.str, a.shape[1:]) for n, a in sorted(item.feeds.items())),
            item.outputs)


def group(model: Layout, items: Sequence[Item], max_rows: int) -> list[list[int]]:
    """Split ``items`` (by index) into runs: items of one key, in arrival order, while their
    rows fit ``row_limit``; an unbatched model or a too-large item runs alone."""
    runs: list[list[int]] = []
    open_runs: dict[Hashable, tuple[list[int], int]] = {}  # key -> (run, rows)
    for index, item in enumerate(items):
        key = _key(item)
        limit = row_limit(model, item, max_rows)
        run, rows = open_runs.get(key, ([], 0))
        if run and rows + item.rows <= limit:
            run.append(index)
            open_runs[key] = (run, rows + item.rows)
            continue
        run = [index]
        runs.append(run)
        open_runs[key] = (run, item.rows)
    return runs


def concatenate(items: Sequence[Item]) -> dict[str, np.ndarray]:
    """One feed of ``items``' arrays stacked along the batch dimension."""
    if len(items) == 1:
        return dict(items[0].feeds)
    return {name: np.concatenate([i.feeds[name] for i in items], axis=0)
            for name in items[0].feeds}


def split(outputs: Mapping[str, np.ndarray],
          rows: Sequence[int]) -> list[dict[str, np.ndarray]] | None:
    """The batch's outputs cut back into one dict per request (None: an output's first
    dimension is not the batch's rows, so the model did not batch that way)."""
    total = sum(rows)
    if any(np.ndim(v) == 0 or np.shape(v)[0] != total for v in outputs.values()):
        return None
    edges = np.cumsum(rows)[:-1]
    parts = {name: np.split(np.asarray(v), edges) for name, v in outputs.items()}
    return [{name: parts[name][k] for name in outputs} for k in range(len(rows))]


def bucket(rows: int, buckets: Sequence[int], limit: int) -> int:
    """The smallest of ``buckets`` that holds ``rows`` and is within ``limit`` (``row_limit``);
    ``rows`` itself when none is."""
    return min((b for b in buckets if rows <= b <= limit), default=rows)


def pad(feeds: Mapping[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """``feeds`` grown to ``rows`` rows by repeating their last row (real values: a padded
    row computes what a real one does, and its outputs are dropped)."""
    return {name: np.concatenate([a, np.repeat(a[-1:], rows - a.shape[0], axis=0)])
            for name, a in feeds.items()}


def warmup_feeds(model: Layout, inputs: Sequence[NodeArg], rows: int
                 ) -> dict[str, np.ndarray] | None:
    """Zeros of ``rows`` rows for every input, each dim but the first taken from the model or,
    where dynamic there, from an engine profile that fixes it (min == max); None when some
    dim or dtype is not known that way (the first request of that shape warms up)."""
    fixing = [p for reads, profiles in model.engines for p in profiles]
    feeds = {}
    for arg in inputs:
        if arg.dtype is None or not arg.shape:
            return None
        dims = [rows]
        for axis, dim in enumerate(arg.shape[1:], start=1):
            if isinstance(dim, int) and dim > 0:
                dims.append(dim)
                continue
            fixed = {int(p[arg.name]["min"][axis]) for p in fixing if arg.name in p
                     and len(p[arg.name]["min"]) == len(arg.shape)
                     and p[arg.name]["min"][axis] == p[arg.name]["max"][axis]}
            if len(fixed) != 1:
                return None
            dims.append(fixed.pop())
        feeds[arg.name] = np.zeros(dims, arg.dtype)
    return feeds
