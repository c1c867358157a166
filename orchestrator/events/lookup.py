"""What the audit trail does not say about a step: its adapter, action and target.

The incident knows (its `state` query, the same view as GET /v1/incidents/{id}): each step
with its adapter, action and target, the policy version of its latest decision and the
findings it keeps. The trail's own facts (orchestrator/events/trail.py) win where it has
them: the decision that planned the step may be older than the latest.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from temporalio.client import Client

from contracts.incident import IncidentView
from orchestrator.events.trail import MAX_FINDING_UIDS, Decided
from orchestrator.temporal.errors import NotFound, Unavailable
from orchestrator.temporal.incidents import IncidentClient

# A view serves the outcomes read together (a release undoes several steps at once).
VIEW_TTL_S = 2.0
MAX_VIEWS = 256


class LookupUnavailableError(Exception):
    """The incident cannot be asked now (Temporal unreachable): ask again later."""


@dataclass(frozen=True)
class StepFacts:
    adapter: str | None = None
    action: str | None = None
    target: Mapping[str, Any] = field(default_factory=dict)
    # The incident's latest decision and kept findings: used when the trail has none.
    decided: Decided | None = None


class StepLookup(Protocol):
    async def facts(self, incident_id: str, step_id: str) -> StepFacts | None:
        """None when there is no such incident or step (the event then carries what the
        trail knows); raises LookupUnavailableError when it cannot tell now."""
        ...


class IncidentLookup:
    """Asks the incident's workflow (a query: no history event, no side effect)."""

    def __init__(self, client: Client) -> None:
        self._incidents = IncidentClient(client)
        self._views: OrderedDict[str, tuple[float, IncidentView]] = OrderedDict()

    async def facts(self, incident_id: str, step_id: str) -> StepFacts | None:
        view = await self._view(incident_id)
        if view is None:
            return None
        step = next((s for s in view.steps if s.id == step_id), None)
        if step is None:
            return None
        uids = [f.finding_info.uid for f in view.findings]
        decided = Decided(
            policy_version=view.decision.policy_version if view.decision else None,
            decision_id=view.decision.decision_id if view.decision else None,
            finding_uids=tuple(dict.fromkeys(uids))[:MAX_FINDING_UIDS],
            findings_total=len(set(uids)),
        )
        return StepFacts(step.adapter, step.action, dict(step.target), decided)

    async def _view(self, incident_id: str) -> IncidentView | None:
        cached = self._views.get(incident_id)
        if cached is not None and time.monotonic() - cached[0] < VIEW_TTL_S:
            return cached[1]
        try:
            view = await self._incidents.state(incident_id)
        except NotFound:
            return None
        except Unavailable as exc:
            raise LookupUnavailableError(str(exc)) from exc
        self._views[incident_id] = (time.monotonic(), view)
        while len(self._views) > MAX_VIEWS:
            self._views.popitem(last=False)
        return view


class StaticLookup:
    """The fake: facts a test states, by (incident, step)."""

    def __init__(self, facts: Mapping[tuple[str, str], StepFacts] | None = None) -> None:
        self.known = dict(facts or {})
        self.unavailable = False  # set to make every call raise LookupUnavailableError
        self.calls = 0

    async def facts(self, incident_id: str, step_id: str) -> StepFacts | None:
        self.calls += 1
        if self.unavailable:
            raise LookupUnavailableError("told to be unavailable")
        return self.known.get((incident_id, step_id))
