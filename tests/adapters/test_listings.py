"""Shared reads (adapters/network/listings.py): callers who ask together share a read, and
none of them ever gets one that began before it asked."""

from __future__ import annotations

import asyncio

import pytest

from adapters.network.listings import SharedReads


class Target:
    """A target whose reads each return its version when the read began, and end when
    the test lets them."""

    def __init__(self) -> None:
        self.version = 0
        self.began: list[int] = []
        self.release: list[asyncio.Event] = []
        self._changed = asyncio.Condition()

    async def read(self) -> int:
        seen = self.version
        self.began.append(seen)
        gate = asyncio.Event()
        self.release.append(gate)
        async with self._changed:
            self._changed.notify_all()
        await gate.wait()
        return seen

    async def until_reads(self, n: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.began) >= n), 5)


async def test_a_caller_who_asks_during_a_read_gets_the_next_one_with_its_change():
    reads, target = SharedReads[int](), Target()
    first = asyncio.ensure_future(reads.read("gw", target.read))
    await target.until_reads(1)
    target.version = 1  # a change lands while the first read runs...
    second = asyncio.ensure_future(reads.read("gw", target.read))  # ...then its caller asks
    await asyncio.sleep(0)
    assert target.began == [0], "no second read while the first runs"
    target.release[0].set()
    assert await first == 0
    await target.until_reads(2)
    target.release[1].set()
    assert await second == 1, "the read that served it began after it asked"


async def test_every_caller_during_a_read_shares_one_next_read():
    reads, target = SharedReads[int](), Target()
    first = asyncio.ensure_future(reads.read("gw", target.read))
    await target.until_reads(1)
    target.version = 7
    later = [asyncio.ensure_future(reads.read("gw", target.read)) for _ in range(50)]
    await asyncio.sleep(0)
    target.release[0].set()
    await target.until_reads(2)
    target.release[1].set()
    assert await first == 0
    assert await asyncio.gather(*later) == [7] * 50
    assert len(target.began) == 2, "fifty callers, two reads"


async def test_keys_do_not_share():
    reads, target = SharedReads[int](), Target()
    calls = [asyncio.ensure_future(reads.read(key, target.read)) for key in ("gw-a", "gw-b")]
    await target.until_reads(2)
    for gate in target.release:
        gate.set()
    await asyncio.gather(*calls)


async def test_a_cancelled_caller_leaves_the_read_to_the_others():
    reads, target = SharedReads[int](), Target()
    impatient = asyncio.ensure_future(reads.read("gw", target.read))
    patient = asyncio.ensure_future(reads.read("gw", target.read))
    await target.until_reads(1)
    impatient.cancel()
    await asyncio.sleep(0)
    target.release[0].set()
    assert await patient == 0
    assert impatient.cancelled()


async def test_a_failed_read_fails_its_callers_and_the_next_ask_reads_afresh():
    reads = SharedReads[int]()
    attempts = []

    async def failing() -> int:
        attempts.append(1)
        await asyncio.sleep(0)
        raise RuntimeError("nft did not answer")

    callers = [asyncio.ensure_future(reads.read("gw", failing)) for _ in range(3)]
    for caller in callers:
        with pytest.raises(RuntimeError, match="did not answer"):
            await caller
    assert len(attempts) == 1

    async def fine() -> int:
        return 5

    assert await reads.read("gw", fine) == 5
