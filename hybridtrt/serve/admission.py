"""How many infer requests a replica takes: some worked on, some waiting, the rest refused (the
replica answers those 503 itself, so the body is the protocol's JSON and not Ray's text)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["Admission"]


class Admission:
    """A replica's request limits (used from its one event loop).

    Args:
        ongoing: Requests worked on at once (batches are formed from them).
        queued: Requests held waiting for one of those places; past them ``admitted`` says no.
    """

    def __init__(self, ongoing: int, queued: int) -> None:
        self.ongoing = ongoing
        self.queued = queued
        self._places = asyncio.Semaphore(ongoing)
        self._held = 0  # requests worked on or waiting

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[bool]:
        """Whether a request is taken; when it is, it holds a place until the block ends."""
        if self._held >= self.ongoing + self.queued:
            yield False
            return
        self._held += 1
        try:
            async with self._places:
                yield True
        finally:
            self._held -= 1
