"""Where a hung async test waits: its event loop's tasks, printed before pytest-timeout fires.

pytest-timeout prints the threads' stacks, and an async test's thread is always in
`selector.poll`, which says nothing about which await never returned. Shortly before the
timeout this prints every task of the loop with its coroutine stack, so a hang seen once
in CI names its await (the test's captured stderr shows it).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

SHARE_OF_TIMEOUT = 0.8  # early enough that the loop still runs when the report is due
MAX_DEPTH = 40


def timeout_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 0)


def awaits_of(task: asyncio.Task[Any]) -> list[str]:
    """The chain of awaits a task is suspended in, outermost first (Task.print_stack
    shows only the outermost frame of a suspended coroutine)."""
    chain: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(chain) < MAX_DEPTH:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            chain.append(f"  waits on {awaited!r:.200}")
            break
        chain.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return chain


def loop_tasks_report(loop: asyncio.AbstractEventLoop) -> str:
    tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
    lines = [f"--- {len(tasks)} task(s) of the test's event loop ---"]
    for task in tasks:
        lines.append(f"{task.get_name()}:")
        lines.extend(awaits_of(task))
    return "\n".join(lines)


def arm(item: pytest.Item, loop: asyncio.AbstractEventLoop) -> asyncio.TimerHandle | None:
    timeout = timeout_of(item)
    if timeout <= 0:
        return None

    def report() -> None:
        print(
            f"\n{item.nodeid} still runs after {timeout * SHARE_OF_TIMEOUT:.0f} s", file=sys.stderr
        )
        print(loop_tasks_report(loop), file=sys.stderr)

    return loop.call_later(timeout * SHARE_OF_TIMEOUT, report)
