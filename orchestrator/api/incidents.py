"""Read side of incidents: the workflow's `state` query is the source of truth."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.api.access import BEARER, Reader
from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.problems import Problem, temporal_unavailable
from workflows.state import IncidentStatus, IncidentView

router = APIRouter()
QUERY_TIMEOUT = timedelta(seconds=5)
MAX_PAGE = 200


async def fetch_incident(context: ApiContext, incident_id: str) -> IncidentView:
    handle = context.client.get_workflow_handle(incident_id)
    try:
        view: IncidentView = await handle.query(
            "state", result_type=IncidentView, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise Problem(404, f"no incident {incident_id!r}", slug="unknown-incident") from None
        raise temporal_unavailable(
            f"incident {incident_id!r} cannot be read now: {exc.message}"
        ) from None
    return view


def summary(view: IncidentView) -> dict[str, Any]:
    severities = [int(f.severity_id) for f in view.findings]
    zones = sorted({r.zone for f in view.findings for r in f.resources if r.zone})
    return {
        "incident_id": view.incident_id,
        "status": view.status.value,
        "entity": view.entity,
        "severity_id": max(severities, default=0),
        "zones": zones,
        "findings": len(view.findings),
        "verdict": view.decision.verdict.value if view.decision else None,
        "steps": {s.id: s.state.value for s in view.steps},
    }


@router.get("/v1/incidents/{incident_id}", openapi_extra={"security": BEARER})
async def get_incident(
    incident_id: str, _reader: Reader, context: Annotated[ApiContext, Depends(get_context)]
) -> dict[str, Any]:
    view = await fetch_incident(context, incident_id)
    return view.model_dump(mode="json")


@router.get("/v1/incidents", openapi_extra={"security": BEARER})
async def list_incidents(
    _reader: Reader,
    context: Annotated[ApiContext, Depends(get_context)],
    status: IncidentStatus | None = None,
    zone: str | None = None,
    severity: Annotated[int | None, Query(ge=0, le=99)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """Running incidents, newest first; filters apply to each incident's live state."""
    summaries = [summary(v) for v in await fetch_running(context)]
    return {"incidents": select(summaries, status, zone, severity)[:limit]}


async def fetch_running(context: ApiContext) -> list[IncidentView]:
    """The live state of every running incident (up to MAX_PAGE), newest first."""
    ids: list[str] = []
    try:
        async for execution in context.client.list_workflows(
            "WorkflowType = 'IncidentWorkflow' AND ExecutionStatus = 'Running'",
            limit=MAX_PAGE,
            rpc_timeout=QUERY_TIMEOUT,
        ):
            ids.append(execution.id)
    except RPCError as exc:
        raise temporal_unavailable(f"cannot list incidents: {exc.message}") from None
    views = await asyncio.gather(*(fetch_incident(context, i) for i in ids), return_exceptions=True)
    return [v for v in views if isinstance(v, IncidentView)]


def select(
    summaries: list[dict[str, Any]],
    status: IncidentStatus | None = None,
    zone: str | None = None,
    severity: int | None = None,
) -> list[dict[str, Any]]:
    """The summaries matching every given filter (severity: at least this severity_id)."""
    if status is not None:
        summaries = [s for s in summaries if s["status"] == status.value]
    if zone is not None:
        summaries = [s for s in summaries if zone in s["zones"]]
    if severity is not None:
        summaries = [s for s in summaries if s["severity_id"] >= severity]
    return summaries
