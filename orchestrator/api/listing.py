"""Listing incidents from Temporal visibility: filters in the query, pages by token.

Each incident keeps its search attributes and memo current (workflows/visibility.py), so
a page of 200 is one visibility call, however many incidents exist, and nothing is
filtered after the fact. A page that cannot be read is an error (503), never a shorter
list: a responder must not mistake "could not read" for "nothing waits for you".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowExecution
from temporalio.service import RPCError, RPCStatusCode

from contracts.incident import IncidentStatus, IncidentView
from contracts.names import STATE_QUERY
from contracts.visibility import (
    AWAITING_APPROVAL,
    CONTINUED,
    IDLE,
    MEMO_KEY,
    SEVERITY,
    STATUS,
    ZONES,
    published,
    row,
    visible_view,
)
from orchestrator.api.context import ApiContext
from orchestrator.api.problems import Problem, temporal_unavailable

LIST_TIMEOUT = timedelta(seconds=10)
UNPUBLISHED_QUERY_TIMEOUT = timedelta(seconds=1)
ZONE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # inventory zone names; safe to quote


@dataclass(frozen=True)
class Filters:
    status: IncidentStatus | None = None
    zone: str | None = None
    severity: int | None = None
    awaiting_approval: bool | None = None

    def query(self, task_queue: str) -> str:
        """The visibility query; every value is an enum, an int or a checked zone name."""
        # One row per incident: a run that continued as new lives on in the next one,
        # except the run that released an incident (its next run rests, hidden, or is the
        # entity's next incident). Runs marked resting or handed over never show.
        terms = [
            "WorkflowType = 'IncidentWorkflow'",
            f"TaskQueue = '{_quoted(task_queue)}'",
            f"(ExecutionStatus != 'ContinuedAsNew' OR {STATUS.name} = 'released')",
            f"({STATUS.name} IS NULL OR {STATUS.name} NOT IN ('{IDLE}', '{CONTINUED}'))",
        ]
        if self.status is not None:
            terms.append(f"{STATUS.name} = '{self.status.value}'")
        if self.zone is not None:
            terms.append(f"{ZONES.name} = '{_quoted(self.zone)}'")
        if self.severity is not None:
            terms.append(f"{SEVERITY.name} >= {int(self.severity)}")
        if self.awaiting_approval is not None:
            terms.append(f"{AWAITING_APPROVAL.name} = {str(self.awaiting_approval).lower()}")
        return " AND ".join(terms)


def incident_key(incident_id: str) -> str:
    """The entity key (the workflow id) of an incident id: `key`, or `key@n` for the
    entity's n-th incident."""
    return incident_id.partition("@")[0]


def canonical(incident_id: str) -> str:
    """`key@1` is the entity's first incident, whose id is the key itself."""
    key, _, sequence = incident_id.partition("@")
    return key if sequence == "1" else incident_id


async def fetch_view(
    context: ApiContext, incident_id: str, *, rpc_timeout: timedelta
) -> IncidentView:
    """An incident's state from its workflow (RPCError when it cannot answer).

    A key names the entity's current incident (the latest, released or not); `key@n`
    names one incident, found among the key's released runs when it is not the latest.
    """
    key = incident_key(incident_id)
    if not key:  # "@2" names no entity; Temporal would refuse the empty workflow id
        raise Problem(404, f"no incident {incident_id!r}", slug="unknown-incident")
    view = await _state(context, key, None, rpc_timeout)
    wanted = canonical(incident_id)
    if "@" not in incident_id or view.incident_id == wanted:
        return view
    run_id = await _released_run(context, key, wanted)
    if run_id is None:
        raise Problem(404, f"no incident {incident_id!r}", slug="unknown-incident")
    return await _state(context, key, run_id, rpc_timeout)


async def _state(
    context: ApiContext, key: str, run_id: str | None, rpc_timeout: timedelta
) -> IncidentView:
    handle = context.client.get_workflow_handle(key, run_id=run_id)
    view: IncidentView = await handle.query(
        STATE_QUERY, result_type=IncidentView, rpc_timeout=rpc_timeout
    )
    return view


async def _released_run(context: ApiContext, key: str, incident_id: str) -> str | None:
    """The run that released this incident (the one that stays listed), newest first."""
    query = f"WorkflowId = '{_quoted(key)}' AND {STATUS.name} = 'released'"
    async for execution in context.client.list_workflows(query, rpc_timeout=LIST_TIMEOUT):
        summary = (await execution.memo()).get(MEMO_KEY) or {}
        if summary.get("incident_id", execution.id) == incident_id:
            return execution.run_id
    return None


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _token_in(page_token: str | None) -> bytes | None:
    if not page_token:
        return None
    try:
        return base64.urlsafe_b64decode(page_token.encode() + b"=" * (-len(page_token) % 4))
    except (binascii.Error, ValueError):
        raise Problem(
            400, "page_token is not one this API gave out", slug="bad-page-token"
        ) from None


def _token_out(token: bytes | None) -> str | None:
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode() if token else None


async def list_page(
    context: ApiContext, filters: Filters, *, limit: int, page_token: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of incident rows, newest first, and the token of the next page."""
    pages = context.client.list_workflows(
        filters.query(context.settings.task_queue),
        page_size=limit,
        next_page_token=_token_in(page_token),
        rpc_timeout=LIST_TIMEOUT,
    )
    try:
        await pages.fetch_next_page()
    except RPCError as exc:
        if exc.status is RPCStatusCode.INVALID_ARGUMENT and page_token:
            raise Problem(
                400, f"page_token refused: {exc.message}", slug="bad-page-token"
            ) from None
        raise temporal_unavailable(f"cannot list incidents: {exc.message}") from None
    rows = await asyncio.gather(*(_row(context, e) for e in pages.current_page or []))
    return list(rows), _token_out(pages.next_page_token)


async def _row(context: ApiContext, execution: WorkflowExecution) -> dict[str, Any]:
    value = published(execution.typed_search_attributes, await execution.memo())
    if value is not None:
        return row(execution.id, value)
    # Not published yet: started a moment ago (its first workflow task publishes), or by a
    # version before incidents published themselves. Ask it briefly; if it cannot answer
    # now, list it anyway, marked, rather than fail the page or leave it out.
    try:
        view = await fetch_view(context, execution.id, rpc_timeout=UNPUBLISHED_QUERY_TIMEOUT)
    except RPCError:
        return {"incident_id": execution.id, "status": IncidentStatus.OPEN.value,
                "published": False}  # fmt: skip
    return row(execution.id, visible_view(view))
