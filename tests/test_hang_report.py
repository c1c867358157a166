"""The hang report names the await a stuck task waits in, however deep (tests/hang_report.py)."""

from __future__ import annotations

import asyncio

from hang_report import loop_tasks_report


async def test_the_report_names_every_frame_down_to_the_stuck_await():
    never = asyncio.Event()

    async def innermost() -> None:
        await never.wait()

    async def outer() -> None:
        await innermost()

    stuck = asyncio.create_task(outer(), name="stuck-task")
    await asyncio.sleep(0)
    try:
        report = loop_tasks_report(asyncio.get_running_loop())
    finally:
        stuck.cancel()
    section = report.split("stuck-task:\n", 1)[1]
    frames = [line.split(" in ")[-1] for line in section.splitlines()[:3]]
    assert frames == ["outer", "innermost", "wait"]
