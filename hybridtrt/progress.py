"""Progress bars on stderr for long conversion work, shown only where someone is watching."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Generator, Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import IO, Any, TypeVar

from tqdm import tqdm

__all__ = ["ENV_VAR", "Bar", "bar", "enabled", "progress"]

ENV_VAR = "HYBRIDTRT_PROGRESS"
_ON = {"1", "true", "yes", "on"}
_OFF = {"0", "false", "no", "off"}
_LOG = logging.getLogger("hybridtrt")
T = TypeVar("T")


def enabled() -> bool:
    """Whether progress bars are shown now.

    ``HYBRIDTRT_PROGRESS=1`` shows them and ``=0`` hides them, whatever else holds (the variable
    wins over logging levels, so CI logs and tests can choose). Otherwise bars are shown when
    stderr is a terminal and the ``"hybridtrt"`` logger is enabled for INFO: the CLI's ``-q``
    (which sets that logger to ERROR) hides them, as does a library user's logging left at its
    default WARNING level.
    """
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in _ON:
        return True
    if forced in _OFF:
        return False
    stream = sys.stderr
    return (stream is not None and hasattr(stream, "isatty") and stream.isatty()
            and _LOG.isEnabledFor(logging.INFO))


class Bar:
    """A progress bar advanced by hand; every method does nothing when bars are off."""

    def __init__(self, shown: tqdm | None) -> None:
        self._shown = shown

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units as done."""
        if self._shown is not None:
            self._shown.update(n)

    def note(self, text: str) -> None:
        """Show ``text`` after the bar (what is being worked on now)."""
        if self._shown is not None:
            self._shown.set_postfix_str(text, refresh=True)


@contextmanager
def bar(*, total: int | None, desc: str, unit: str = "it") -> Iterator[Bar]:
    """A bar for work without an iterable; log records are written above it while it is shown.

    Args:
        total: How many units the work has (None: unknown, the bar counts without a percentage;
            0: nothing to do, no bar).
        desc: What the work is, shown before the bar.
        unit: What one unit is called.

    Example:
        >>> with bar(total=2, desc="engines", unit="engine") as shown:
        ...     for name in ("a", "b"):
        ...         shown.note(name)
        ...         shown.advance()
    """
    if total == 0 or not enabled():
        yield Bar(None)
        return
    with _logs_above_bars(), tqdm(total=total, desc=desc, unit=unit, file=sys.stderr,
                                  dynamic_ncols=True, leave=None) as shown:
        # leave=None: a finished top-level bar stays, a nested one (e.g. shape ranges recorded
        # during the engine stage) disappears.
        yield Bar(shown)


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str,
             unit: str = "it") -> Generator[T, None, None]:
    """The items of ``iterable``, counted on a progress bar when bars are shown (see ``enabled``).

    The items and their order are untouched. An item counts as done when the next one is asked
    for; the bar closes when the iterable is exhausted, or when the generator is closed or freed
    (a loop left by an exception keeps the bar until then: use ``bar`` where that matters).

    Args:
        iterable: The work items.
        total: How many items there are (default: ``len(iterable)`` when it has one).
        desc: What the work is, shown before the bar.
        unit: What one item is called.

    Example:
        >>> [x * 2 for x in progress([1, 2, 3], desc="doubling")]
        [2, 4, 6]
    """
    if total is None and isinstance(iterable, Sized):
        total = len(iterable)
    with bar(total=total, desc=desc, unit=unit) as shown:
        for item in iterable:
            yield item
            shown.advance()


class _AboveBars:
    """A stream for a logging handler: each record goes through ``tqdm.write``, which clears the
    bars, writes the line and draws the bars again below it."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        tqdm.write(text, file=self.stream, end="")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def _logs_above_bars() -> Iterator[None]:
    """Route the console handlers of the root and ``"hybridtrt"`` loggers through ``tqdm.write``.

    Only the streams of existing handlers are swapped (and restored), so levels, formats and
    which records are shown stay as they were; tqdm's ``logging_redirect_tqdm`` would add a
    handler to loggers that have none.
    """
    swapped: list[tuple[logging.StreamHandler[Any], IO[str]]] = []
    for logger in (logging.getLogger(), _LOG):
        for handler in logger.handlers:
            if (isinstance(handler, logging.StreamHandler)
                    and any(handler.stream is s for s in (sys.stderr, sys.stdout) if s is not None)):
                swapped.append((handler, handler.stream))
                handler.setStream(_AboveBars(handler.stream))  # type: ignore[arg-type]
    try:
        yield
    finally:
        for handler, stream in reversed(swapped):
            handler.setStream(stream)
