"""Stopping the lab's parts: each one, whatever happened to the one before it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


async def stop_all(stops: dict[str, Callable[[], Awaitable[None]] | None]) -> None:
    """Call every stop in order; a part that fails to stop is logged, and the others still
    stop, so no server process outlives the lab."""
    for name, stop in stops.items():
        if stop is None:
            continue
        try:
            await stop()
        except Exception as exc:  # noqa: BLE001 - cleanup goes on past any one failure
            log.warning("lab.stop_failed", part=name, error=repr(exc))
