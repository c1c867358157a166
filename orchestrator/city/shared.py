"""One read of the city in flight at a time, shared by every request that asks meanwhile.

A live console page per duty officer, `bulkhead status` in a loop, a wall screen: each
asks for the picture every few seconds, and each read lists incidents and queries up to
200 of them. Requests that arrive while a read runs wait for that read instead of
starting their own; a request that starts after a read ended gets a fresh one, so an
answer is never older than the request that asked for it by more than one read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SharedRead(Generic[T]):
    def __init__(self) -> None:
        self._running: asyncio.Future[T] | None = None

    async def get(self, read: Callable[[], Awaitable[T]]) -> T:
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(read())
            # Retrieved here too, so a read whose every asker went away logs no
            # "exception was never retrieved".
            self._running.add_done_callback(_retrieve)
        # A request that goes away must not cancel the read the others wait for.
        return await asyncio.shield(self._running)


def _retrieve(done: asyncio.Future[Any]) -> None:
    if not done.cancelled():
        done.exception()
