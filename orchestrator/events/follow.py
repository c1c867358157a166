"""Following the sealed audit file from a saved cursor: what the events sender and the
notifier (orchestrator/notify/) both read, each from its own cursor in its own outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn

import structlog

from contracts.incident import AuditEntry
from orchestrator.events.outbox import Cursor, Outbox

log = structlog.get_logger(__name__)

CHUNK_BYTES = 1 << 20  # of the trail read at once


def start_cursor(outbox: Outbox, path: Path) -> Cursor:
    """The saved cursor; on a first start the trail's current end (saved): a reader
    reports what happens from when it was turned on, not a deployment's whole history."""
    cursor = outbox.cursor()
    if cursor is None:
        cursor = end_of(path)
        outbox.save_cursor(cursor)
    return cursor


async def read_new(path: Path, cursor: Cursor) -> tuple[list[AuditEntry], Cursor]:
    """The whole entries appended after `cursor`, and the cursor past them (`cursor`
    itself when nothing is new). Another file at the path (moved aside, restored) is read
    from its start; the queues drop what they already hold."""
    now = end_of(path)
    if now.inode != cursor.inode or now.offset < cursor.offset:
        cursor = Cursor(offset=0, inode=now.inode)
    if now.offset == cursor.offset:
        return [], cursor
    data = await asyncio.to_thread(_read, path, cursor.offset)
    complete = data[: data.rfind(b"\n") + 1]  # a line being appended waits
    if not complete and len(data) < CHUNK_BYTES:
        return [], cursor
    if not complete:  # a line longer than a chunk is no entry a reader can use
        log.error("audit.line_too_long", path=str(path), offset=cursor.offset)
        complete = data
    entries = [e for e in map(entry_of, _lines(complete)) if e is not None]
    return entries, Cursor(offset=cursor.offset + len(complete), inode=now.inode)


async def advance(
    path: Path,
    outbox: Outbox,
    cursor: Cursor,
    handle: Callable[[AuditEntry], Awaitable[None]],
) -> Cursor:
    """Hand each entry appended after `cursor` to `handle`, in order; then save and return
    the cursor past them (`cursor`'s equal when nothing was new)."""
    entries, after = await read_new(path, cursor)
    for entry in entries:
        await handle(entry)
    if after != cursor:
        await asyncio.to_thread(outbox.save_cursor, after)
    return after


async def keep_reading(
    read_once: Callable[[], Awaitable[bool]], poll_s: float, *, event: str, path: Path
) -> NoReturn:
    """Call `read_once` for ever, pausing `poll_s` whenever it found nothing new. The
    reader outlives any one bad read: it is logged as `event` and tried again."""
    while True:
        try:
            moved = await read_once()
        except Exception:  # logged with its traceback; the reader goes on
            log.exception(event, path=str(path))
            moved = False
        if not moved:
            await asyncio.sleep(poll_s)


def end_of(path: Path) -> Cursor:
    try:
        status = path.stat()
    except FileNotFoundError:
        return Cursor(offset=0, inode=None)
    return Cursor(offset=status.st_size, inode=status.st_ino)


def _read(path: Path, offset: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(CHUNK_BYTES)


def _lines(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\n") if line.strip()]


def entry_of(line: bytes) -> AuditEntry | None:
    try:
        return AuditEntry.model_validate_json(line)
    except ValueError:
        return None  # not an entry (`bulkhead audit verify` reports such lines)
