"""Plain-text tables for the tools' terminal output."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

__all__ = ["graph_table", "text_table"]


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]],
               right: Collection[int] = ()) -> list[str]:
    """Lines of a table: a header, a rule, the rows; columns in ``right`` are right-aligned."""
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def graph_table(graphs: Sequence[Any]) -> list[str]:
    """The "CUDA graphs:" block of ``bench`` and ``profile``: per segment (a ``GraphStatus``),
    whether its runs are captured and, if not, why (empty without statuses)."""
    if not graphs:
        return []
    return ["", "CUDA graphs:"] + text_table(
        ("segment", "captured", "why not"),
        [(g.segment, "yes" if g.captured else "no", g.reason or "-") for g in graphs])
