"""Stopping the parts of a process (orchestrator/runtime.py run_until_stopped) is bounded:
a part that does not stop when told to, as a Temporal worker hung in its core's shutdown
does (sdk-python#1837), is named and left, and the process can still exit."""

from __future__ import annotations

import asyncio

from orchestrator.runtime import run_until_stopped


async def test_a_part_that_does_not_stop_is_named_and_left_after_the_grace():
    stop = asyncio.Event()
    told: list[str] = []

    async def stops() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            told.append("api")

    async def hangs_in_shutdown() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            told.append("worker")
            await asyncio.Event().wait()  # its own shutdown, which never ends

    loop = asyncio.get_running_loop()
    loop.call_later(0.05, stop.set)
    started = loop.time()
    reason = await run_until_stopped(
        stop, {"api": stops(), "worker": hangs_in_shutdown()}, grace_s=0.3
    )
    assert reason == "signal; worker did not stop within 0.3 s"
    assert sorted(told) == ["api", "worker"]
    assert loop.time() - started < 5


async def test_parts_that_stop_report_only_what_ended_them():
    stop = asyncio.Event()

    async def ends() -> None:
        await asyncio.sleep(0.01)

    async def runs() -> None:
        await asyncio.Event().wait()

    reason = await run_until_stopped(stop, {"lab": ends(), "api": runs()}, grace_s=5)
    assert reason == "lab stopped"
