"""One follower of the trail per state dir: the workers of one host share the trail, the
queues and the cursor, so one of them sends and the others stand by.

Each part that follows the trail (the event sender, the notifier) holds an `flock` on a
lock file beside its queues while it runs. A worker that cannot take it waits, trying
again every second; the kernel releases the lock when its holder's process ends, however
it ends, and a standby then takes over from the queues and cursor on disk. Without it,
two workers sent every event twice and each failed on files the other had delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

RETRY_S = 1.0
LEADER_LOCK = ".leader.lock"  # in the part's queue folder (a sink's queue is a folder)


@contextlib.asynccontextmanager
async def leading(lock: Path, part: str, retry_s: float = RETRY_S) -> AsyncIterator[None]:
    """Enter once this process holds `lock`; hold it until the block ends."""
    lock.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    log.info(f"{part}.standing_by", reason="another worker sends", lock=str(lock))
                    waited = True
                await asyncio.sleep(retry_s)
        if waited:
            log.info(f"{part}.taking_over", lock=str(lock))
        yield
    finally:
        os.close(fd)  # releases the lock
