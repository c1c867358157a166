"""Reads of a target that concurrent callers may share without reading anything stale.

A caller needs a read that shows every change made before it asked. A read already under
way when it asks may have begun before that change and cannot serve it; the next read,
not yet begun, can. So each key has at most one read running and one waiting to start:
everyone who asks while a read runs shares the one that starts when it ends. With N
callers at once that is two reads instead of N, and no caller ever gets a read that began
before it asked. The nftables adapter reads its whole table back to verify each step
(nft.py): without this, N steps verified together cost N whole-table listings, each
longer by the others' rules (bench/network.py, docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedReads(Generic[T]):
    def __init__(self) -> None:
        # Per event loop (a test may run several), per key: the read running and the one
        # that waits for it to end.
        self._running: dict[tuple[int, Hashable], asyncio.Task[T]] = {}
        self._waiting: dict[tuple[int, Hashable], asyncio.Task[T]] = {}

    async def read(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> T:
        """`start()`'s result, from a read that begins after this call; shared with the
        callers who ask for `key` before it begins. A caller cancelled while it waits
        leaves the read to the others (its failure is each caller's failure)."""
        slot = (id(asyncio.get_running_loop()), key)
        task = self._waiting.get(slot)
        if task is None:
            task = asyncio.ensure_future(self._after(slot, self._running.get(slot), start))
            task.add_done_callback(_retrieve)
            self._waiting[slot] = task
        return await asyncio.shield(task)

    async def _after(
        self,
        slot: tuple[int, Hashable],
        running: asyncio.Task[T] | None,
        start: Callable[[], Awaitable[T]],
    ) -> T:
        if running is not None:
            await asyncio.wait([running])  # its outcome is its own callers'
        # From here on this read has begun: a caller who asks now waits for the next one.
        current = self._waiting.pop(slot)
        self._running[slot] = current
        try:
            return await start()
        finally:
            if self._running.get(slot) is current:
                del self._running[slot]


def _retrieve(task: asyncio.Task[object]) -> None:
    """Mark a failure as seen: every caller may have been cancelled before it ended."""
    with contextlib.suppress(asyncio.CancelledError):
        task.exception()
