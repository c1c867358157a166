"""Live updates: Server-Sent Events that re-render a page's live region when it changes.

Each open page polls the workflow query about once a second (the list pages every two)
and sends the re-rendered fragment only when it differs from the last one sent. A stream
ends when the client goes away (Starlette cancels it on `http.disconnect`), when the
session ends, or after STREAM_MAX_S, when EventSource reconnects on its own; at most
MAX_STREAMS run per process. A slow or absent Temporal delays only the stream that asked:
its page keeps the last state and says why it is not updating.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import StreamingResponse

from orchestrator.api.problems import Problem

POLL_S = 1.0
LIST_POLL_S = 2.0
STREAM_MAX_S = 300.0
KEEPALIVE_S = 15.0
# A little over the query's own rpc timeout (which says more); a list waits for the list
# call and then for every incident's query.
RENDER_TIMEOUT_S = 6.0
LIST_RENDER_TIMEOUT_S = 12.0
MAX_STREAMS = 64
RETRY_MS = 1500
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


@dataclass
class Streams:
    active: int = 0


def logged_out() -> StreamingResponse:
    async def once() -> AsyncIterator[str]:
        yield event("logout", {})

    return StreamingResponse(once(), media_type="text/event-stream", headers=STREAM_HEADERS)


def stream(
    streams: Streams,
    render: Callable[[], Awaitable[str]],
    still_logged_in: Callable[[], bool],
    *,
    listing: bool = False,
) -> StreamingResponse:
    interval_s, timeout_s = (
        (LIST_POLL_S, LIST_RENDER_TIMEOUT_S) if listing else (POLL_S, RENDER_TIMEOUT_S)
    )
    return StreamingResponse(
        _updates(streams, render, still_logged_in, interval_s, timeout_s),
        media_type="text/event-stream",
        headers=STREAM_HEADERS,
    )


async def _updates(
    streams: Streams,
    render: Callable[[], Awaitable[str]],
    still_logged_in: Callable[[], bool],
    interval_s: float,
    timeout_s: float,
) -> AsyncIterator[str]:
    if streams.active >= MAX_STREAMS:
        yield f"retry: {RETRY_MS * 4}\n\n"
        yield event("status", {"text": "too many live pages are open; updates resume shortly"})
        return
    # Counted only once the generator runs, so its `finally` always balances the count.
    streams.active += 1
    try:
        yield f"retry: {RETRY_MS}\n\n"
        deadline = time.monotonic() + STREAM_MAX_S
        last_html: str | None = None
        last_status = ""
        last_sent = time.monotonic()
        while time.monotonic() < deadline:
            if not still_logged_in():
                yield event("logout", {})
                return
            status = ""
            try:
                html = await asyncio.wait_for(render(), timeout_s)
            except Problem as problem:
                html, status = None, f"not updating: {problem.detail}"
            except TimeoutError:
                html, status = None, "not updating: Temporal is slow to answer; retrying"
            if html is not None and html != last_html:
                last_html = html
                yield event("update", {"html": html})
                last_sent = time.monotonic()
            if status != last_status:
                last_status = status
                yield event("status", {"text": status})
                last_sent = time.monotonic()
            if time.monotonic() - last_sent > KEEPALIVE_S:
                yield ": keepalive\n\n"  # proxies close idle connections
                last_sent = time.monotonic()
            await asyncio.sleep(interval_s)
    finally:
        streams.active -= 1
