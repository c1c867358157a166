"""The write fence of the mode switches: one writer per target point, and a memory of the
writes that may still land on it.

Why: a write to a slow device can outlast the adapter's timeout and land later. If the
retry, or a rollback, ran meanwhile, the late write could land after it and leave the
device in the wrong mode with nobody knowing. So every read-then-write on a point (plan,
apply, rollback) holds that point's fence, and a write whose fate is unknown when its
attempt ends stays on record (`in_doubt`) until it is seen to land or its settle period
is over: the next holder waits it out (apply, plan) or re-asserts after it (rollback).

What it covers: calls made through one adapter object, i.e. within one worker process
(the worker builds one adapter per kind). Temporal retries a local activity in the same
process, so that is where a timed-out attempt and its retry meet.

What it does not cover: a write sent by another process (a second worker, a crashed
worker's last request still queued in the device, an operator's HMI). Those are bounded
only by the settle period the adapter waits after its own writes. A device-side fence
would close that gap: a sequence or owner register the device checks on every write
(compare-and-set, or a lease token it stores), so a stale write from any process is
refused by the device itself instead of being raced by the next one.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from contracts.adapter import WriteOutcome, WriteRecord

Purpose = Literal["apply", "rollback"]
# Idempotency keys remembered per point; the oldest settled ones are forgotten first.
_KEYS_KEPT = 64


@dataclass
class WriteEntry:
    """A write while the adapter still learns what became of it (mutable, in-process)."""

    value: Any
    purpose: Purpose
    at: datetime
    sent: float  # time.monotonic() when sent
    settles_at: float  # monotonic: after this the device can no longer apply it
    # Until told otherwise: an attempt cancelled mid-write leaves it like this.
    outcome: WriteOutcome = "interrupted"
    detail: str = "the attempt ended while the write was in flight"

    @property
    def in_doubt(self) -> bool:
        """It may still land: sent, unanswered, not seen, settle period not over."""
        return self.outcome == "interrupted" and time.monotonic() < self.settles_at

    def settle(self, outcome: WriteOutcome, detail: str = "") -> None:
        if self.outcome == "interrupted":  # decided once; later news of it changes nothing
            self.outcome = outcome
            self.detail = detail

    def seen(self) -> None:
        """A read showed the value: the write has landed, nothing of it is left to come."""
        after = time.monotonic() - self.sent
        self.settle("landed_late", f"{self.detail}; the point showed the value {after:.2f} s later")

    def expired(self) -> None:
        """Its settle period is over without a read showing the value."""
        settle_s = self.settles_at - self.sent
        self.settle(
            "not_seen",
            f"{self.detail}; the point did not show the value within the {settle_s:g} s "
            "settle period, after which the device can no longer apply it",
        )

    def record(self) -> WriteRecord:
        return WriteRecord(
            value=self.value,
            purpose=self.purpose,
            at=self.at,
            outcome=self.outcome,
            detail=self.detail,
        )


@dataclass
class TargetWrites:
    """One point's lock and the writes made to it, per idempotency key."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0
    by_key: OrderedDict[str, list[WriteEntry]] = field(default_factory=OrderedDict)

    def begin(self, key: str, purpose: Purpose, value: Any, settle_s: float) -> WriteEntry:
        now = time.monotonic()
        entry = WriteEntry(
            value=value,
            purpose=purpose,
            at=datetime.now(UTC),
            sent=now,
            settles_at=now + settle_s,
        )
        self.by_key.setdefault(key, []).append(entry)
        self.by_key.move_to_end(key)
        self._forget_old_keys()
        return entry

    def in_doubt(self) -> list[WriteEntry]:
        """Writes to this point, by any key, that may still land."""
        return [entry for entries in self.by_key.values() for entry in entries if entry.in_doubt]

    def take(self, key: str) -> list[WriteRecord]:
        """The key's writes for a receipt; they leave the fence's memory with it."""
        return [entry.record() for entry in self.by_key.pop(key, [])]

    def _forget_old_keys(self) -> None:
        # Writes of attempts that never succeeded stay until a retry takes them; bound that.
        for key in list(self.by_key)[: max(0, len(self.by_key) - _KEYS_KEPT)]:
            if not any(entry.in_doubt for entry in self.by_key[key]):
                del self.by_key[key]


class WriteFence:
    """Per-point locks (FIFO, as asyncio.Lock is) and write memory of one adapter."""

    def __init__(self) -> None:
        self._targets: dict[Hashable, TargetWrites] = {}

    @asynccontextmanager
    async def hold(self, point: Hashable) -> AsyncIterator[TargetWrites]:
        target = self._targets.setdefault(point, TargetWrites())
        target.waiting += 1
        try:
            await target.lock.acquire()
        finally:
            target.waiting -= 1
        try:
            yield target
        finally:
            target.lock.release()

    def waiting(self, point: Hashable) -> int:
        """How many calls queue behind the holder of a point's fence."""
        target = self._targets.get(point)
        return target.waiting if target is not None else 0


def describe(records: list[WriteRecord]) -> str:
    """Writes in words, for a receipt's detail (which the audit trail records)."""
    return "; ".join(_described(record) for record in records)


def _described(record: WriteRecord) -> str:
    clock = record.at.strftime("%H:%M:%S.%f")[:-3]  # milliseconds
    outcome = record.outcome.replace("_", " ")
    words = f"{record.purpose} wrote {record.value!r} at {clock} UTC: {outcome}"
    if record.detail:
        words += f" ({record.detail})"
    return words
