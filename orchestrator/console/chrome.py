"""What every console page shows around its content: the paused banner and the count of
approvals waiting, beside the navigation.

Both are cheap enough for every page view. The kill switch is read from the city
record's memo (`TemporalCity.snapshot`, answered by the server without a worker); only
while it says paused is the whole record queried, for who paused it, when and why. The
counts are visibility counts (`count_workflows`), never a read of each incident. Neither
may fail a page: what cannot be read in CHROME_TIMEOUT_S is left out of the chrome, and
the page itself says what it could not read.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from fastapi.responses import Response
from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from orchestrator.api.context import ApiContext
from orchestrator.api.listing import Filters
from orchestrator.api.problems import Problem
from orchestrator.console.render import page
from orchestrator.console.visit import Visit
from orchestrator.temporal.errors import Unavailable

log = structlog.get_logger(__name__)
CHROME_TIMEOUT_S = 1.5
COUNT_TIMEOUT = timedelta(seconds=CHROME_TIMEOUT_S)
# Overdue: still waiting for a person after its incident was escalated, which is what an
# approval deadline passing does (IncidentStatus "escalated"). Visibility holds no
# deadline, so this is the count it can give without reading each incident.
OVERDUE_TERM = "BulkheadStatus = 'escalated'"
READ_ERRORS = (
    RPCError,
    Unavailable,
    RuntimeError,
    TimeoutError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)


@dataclass(frozen=True)
class Paused:
    """Automation is paused; who, when and why, when the record could be read."""

    by: str | None = None
    at: str | None = None
    reason: str | None = None
    unread: str | None = None  # why who/why is not shown


@dataclass(frozen=True)
class Counts:
    pending: int
    overdue: int


async def paused(context: ApiContext) -> Paused | None:
    """None while automation runs (or its state cannot be read: the home page says so)."""
    try:
        snapshot = await asyncio.wait_for(context.city.snapshot(), CHROME_TIMEOUT_S)
    except READ_ERRORS as exc:
        log.debug("console.kill_switch_unread", error=str(exc))
        return None
    if not snapshot.paused:
        return None
    try:
        # A worker answers this query: with none running, say paused without who or why.
        record = await asyncio.wait_for(context.city.view(), CHROME_TIMEOUT_S)
    except READ_ERRORS as exc:
        message = getattr(exc, "message", None) or str(exc) or "no worker answered in time"
        return Paused(unread=message)
    return Paused(by=record.changed_by, at=record.changed_at, reason=record.reason)


async def approval_counts(context: ApiContext) -> Counts | None:
    """Incidents with a step waiting for a person, and how many of them are overdue."""
    waiting = Filters(awaiting_approval=True).query(context.settings.task_queue)
    try:
        pending, overdue = await asyncio.gather(
            context.client.count_workflows(waiting, rpc_timeout=COUNT_TIMEOUT),
            context.client.count_workflows(
                f"{waiting} AND {OVERDUE_TERM}", rpc_timeout=COUNT_TIMEOUT
            ),
        )
    except READ_ERRORS as exc:
        log.debug("console.approval_count_unread", error=str(exc))
        return None
    return Counts(pending.count, overdue.count)


async def _within(work: Any) -> Any:
    try:
        return await asyncio.wait_for(work, CHROME_TIMEOUT_S)
    except TimeoutError:
        return None


async def around(visit: Visit, nav: str = "") -> dict[str, Any]:
    """The template context every page's frame needs: visit.common plus banner and counts."""
    if visit.principal is None:
        return {**visit.common(nav), "paused": None, "counts": None}
    banner, counts = await asyncio.gather(
        paused(visit.context), _within(approval_counts(visit.context))
    )
    return {**visit.common(nav), "paused": banner, "counts": counts}


async def error_page(visit: Visit, problem: Problem) -> Response:
    """visit.error_page with the banner and counts: an error is a console page too."""
    return page(
        "error.html",
        status=problem.status,
        title=problem.slug.replace("-", " ").capitalize(),
        detail=problem.detail,
        **await around(visit),
    )
