"""Running the parts in one asyncio process: API server, worker, lab; stop on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Generator

import uvicorn
from fastapi import FastAPI

from orchestrator.api.server import uvicorn_config


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the supervisor decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def api_server(app: FastAPI, host: str, port: int) -> EmbeddedServer:
    """The API's server, with the deadlines and proxy trust of the app's own settings."""
    return EmbeddedServer(uvicorn_config(app, app.state.context.settings, host, port))


def freeze_heap() -> None:
    """Put what startup built (modules, pydantic schemas, the app, the policy) out of the
    garbage collector's reach before serving: each full collection would otherwise walk
    it again: py-spy found collections at 8 % of the API's samples in an alert storm, and
    freezing raised the storm's rate by 9-15 % (A/B, three runs each). Cycles made
    afterwards are collected as before."""
    gc.collect()
    gc.freeze()


def stop_event_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, so every part can shut down in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


# How long the parts get to stop once told to. Temporal's core can wait for ever in a
# worker's shutdown after it evicted a run whose local activity it still tracked (the
# lost cancel of sdk-python#1837; seen in this project's CI): unbounded, a SIGTERM would
# leave a process that never exits until something kills it.
STOP_GRACE_S = 30.0


async def run_until_stopped(
    stop: asyncio.Event, parts: dict[str, Awaitable[object]], *, grace_s: float = STOP_GRACE_S
) -> str:
    """Run the parts until a signal or until one part ends; return what ended it, and
    which parts did not stop within `grace_s` (those are cancelled once more and left)."""
    tasks = {asyncio.ensure_future(aw): name for name, aw in parts.items()}
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    reason = "signal"
    for task in done:
        if task is stopper:
            continue
        reason = f"{tasks[task]} stopped"
        if not task.cancelled() and task.exception() is not None:
            reason = f"{tasks[task]} failed: {task.exception()!r}"
    stopper.cancel()
    for task in tasks:
        task.cancel()
    _, hung = await asyncio.wait([*tasks, stopper], timeout=grace_s)
    for task in hung:
        task.cancel()  # a part that began its own shutdown on the first cancel ends that wait
    names = sorted(tasks[task] for task in hung if task in tasks)
    if names:
        reason += f"; {', '.join(names)} did not stop within {grace_s:g} s"
    return reason
