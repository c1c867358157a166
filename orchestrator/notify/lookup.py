"""What the trail does not say about a notice: zone, severity, the step's plan, deadline
and roles, from the incident's `state` query (no history event, no side effect).

A notice never waits long for this: when Temporal cannot answer within the query
timeout the notice goes out with what the trail knows (a page without its plan beats a
page held back while Temporal is down).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

import structlog
from temporalio.client import Client

from contracts.incident import IncidentView
from orchestrator.temporal.incidents import IncidentClient

log = structlog.get_logger(__name__)

VIEW_TTL_S = 2.0  # a view serves the notices read together (one incident's steps)
MAX_VIEWS = 256


class FactLookup(Protocol):
    async def facts(self, incident_id: str, step_id: str | None) -> dict[str, Any]: ...


def facts_of(view: IncidentView, step_id: str | None) -> dict[str, Any]:
    decision = view.decision
    facts: dict[str, Any] = {
        "entity": view.entity,
        "zones": list(decision.zones) if decision else [],
        "zone": decision.zones[0] if decision and decision.zones else None,
        "severity_id": max((int(f.severity_id) for f in view.findings), default=0),
        "steps_awaiting": sum(1 for s in view.steps if s.state == "awaiting_approval"),
    }
    step = next((s for s in view.steps if s.id == step_id), None)
    if step is not None:
        facts.update(
            state=step.state.value,
            adapter=step.adapter,
            action=step.action,
            target=dict(step.target),
            roles_needed=sorted(set(step.approval_roles) | set(step.must_include_roles)),
            required_approvals=step.required_approvals,
            approvals=len(step.approvals),
            deadline=step.approval_deadline,
            lease_expires_at=step.lease_expires_at,
        )
        if step.preview is not None:
            facts["plan"] = step.preview.summary
            facts["blast_radius"] = list(step.preview.changes)
    return facts


class IncidentFacts:
    def __init__(self, client: Client) -> None:
        self._incidents = IncidentClient(client)
        self._views: OrderedDict[str, tuple[float, IncidentView]] = OrderedDict()

    async def facts(self, incident_id: str, step_id: str | None) -> dict[str, Any]:
        cached = self._views.get(incident_id)
        if cached is not None and time.monotonic() - cached[0] < VIEW_TTL_S:
            return facts_of(cached[1], step_id)
        try:
            view = await self._incidents.state(incident_id)
        except Exception as exc:  # noqa: BLE001 - gone or unreachable: the trail's facts
            log.warning("notify.lookup_failed", incident_id=incident_id, error=repr(exc))
            return {}
        self._views[incident_id] = (time.monotonic(), view)
        while len(self._views) > MAX_VIEWS:
            self._views.popitem(last=False)
        return facts_of(view, step_id)


class NoFacts:
    """The fake: the trail's facts only."""

    async def facts(self, incident_id: str, step_id: str | None) -> dict[str, Any]:
        return {}
