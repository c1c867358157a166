"""What a responder does to an incident or to the city record, as one service.

Each action is read, authorized by the approval policy (authorization.py), granted (the
grant the workflow checks, grants.py) and sent as the workflow's Update through the typed
incident client; the workflow's validator then enforces the incident's own rules (state,
four-eyes, roles). Failures leave as the domain errors of errors.py: the JSON API and the
console, which both call this, decide at their edge what each one looks like.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Literal, Protocol, TypeVar

import structlog
from temporalio.client import Client

from contracts.city import AutomationChange, CityView
from contracts.incident import (
    ApproveRequest,
    DenyRequest,
    ExtendRequest,
    IncidentView,
    Principal,
    ReleaseRequest,
    ReleaseStepRequest,
    StepView,
)
from orchestrator.policy.base import Authorization, PolicyEngine
from orchestrator.responders import authorization, grants, undo
from orchestrator.responders.errors import (
    Conflict,
    Failed,
    Unavailable,
    UnknownIncident,
    UnknownStep,
)
from orchestrator.temporal import errors as temporal
from orchestrator.temporal.city import TemporalCity
from orchestrator.temporal.incidents import IncidentClient

log = structlog.get_logger(__name__)
T = TypeVar("T")
StepAction = Literal["approve", "deny", "extend"]


class Deployment(Protocol):
    """What the service needs of the process serving it (the API's context has it)."""

    @property
    def client(self) -> Client: ...

    @property
    def engine(self) -> PolicyEngine | None: ...

    @property
    def city(self) -> TemporalCity: ...

    @property
    def approval_key(self) -> bytes: ...


def step_of(view: IncidentView, step_id: str) -> StepView:
    for step in view.steps:
        if step.id == step_id:
            return step
    raise UnknownStep(f"incident {view.incident_id} has no step {step_id!r}")


class Responders:
    """The responder service of one deployment; cheap to make, per request."""

    def __init__(self, deployment: Deployment, incidents: IncidentClient | None = None) -> None:
        self._deployment = deployment
        # Given only by tests that stand in for Temporal.
        self._incidents = incidents or IncidentClient(deployment.client)

    async def incident(self, incident_id: str) -> IncidentView:
        """An incident as its workflow answers for it (`key` or `key@n`)."""
        try:
            return await self._incidents.state(incident_id)
        except temporal.NotFound:
            raise UnknownIncident(f"no incident {incident_id!r}") from None
        except temporal.Unavailable as exc:
            raise Unavailable(
                f"incident {incident_id!r} cannot be read now: {exc.message}"
            ) from None

    def authorize(
        self,
        action: str,
        principal: Principal,
        view: IncidentView | None = None,
        step: StepView | None = None,
    ) -> Authorization:
        return authorization.authorize(self._deployment.engine, action, principal, view, step)

    # --- step actions and release ------------------------------------------------------

    async def approve(
        self, principal: Principal, incident_id: str, step_id: str, *, reason: str
    ) -> StepView:
        permit, _ = await self._permit(principal, incident_id, "approve", step_id)
        request = ApproveRequest(**permit, reason=reason)
        return await _sent("approve", incident_id, self._incidents.approve(incident_id, request))

    async def deny(
        self, principal: Principal, incident_id: str, step_id: str, *, reason: str
    ) -> StepView:
        permit, _ = await self._permit(principal, incident_id, "deny", step_id)
        request = DenyRequest(**permit, reason=reason)
        return await _sent("deny", incident_id, self._incidents.deny(incident_id, request))

    async def extend(
        self, principal: Principal, incident_id: str, step_id: str, *, lease_s: int, reason: str
    ) -> StepView:
        permit, _ = await self._permit(principal, incident_id, "extend", step_id)
        request = ExtendRequest(**permit, lease_s=lease_s, reason=reason)
        return await _sent("extend", incident_id, self._incidents.extend(incident_id, request))

    async def release(
        self, principal: Principal, incident_id: str, *, reason: str
    ) -> tuple[IncidentView, undo.ReleaseReport]:
        """Returns once the saga reverted every applied step: the incident, and what the
        release did to each step it meant to undo (from the incident read to permit it)."""
        permit, before = await self._permit(principal, incident_id, "release", None)
        request = ReleaseRequest(**permit, reason=reason)
        sending = self._incidents.release(incident_id, request)
        released = await _sent("release", incident_id, sending)
        return released, undo.report(undo.preview(before), released)

    async def release_step(
        self, principal: Principal, incident_id: str, step_id: str, *, reason: str
    ) -> tuple[StepView, undo.ReleaseReport]:
        """Undo one held step; returns once the workflow undid it (or found it could not),
        with the report of it."""
        permit, before = await self._permit(principal, incident_id, "release", step_id)
        request = ReleaseStepRequest(**permit, reason=reason)
        sending = self._incidents.release_step(incident_id, request)
        step = await _sent("release", incident_id, sending)
        steps = [step if s.id == step.id else s for s in before.steps]
        after = before.model_copy(update={"steps": steps})
        return step, undo.report(undo.preview(before, step_id), after)

    async def release_preview(
        self, incident_id: str, step_id: str | None = None
    ) -> undo.ReleasePreview:
        """What a release (of the incident, or of one step) would undo now."""
        view = await self.incident(incident_id)
        if step_id is not None:
            step_of(view, step_id)  # an unknown step is a 404, not an empty preview
        return undo.preview(view, step_id)

    async def _permit(
        self,
        principal: Principal,
        incident_id: str,
        action: StepAction | Literal["release"],
        step_id: str | None,
    ) -> tuple[dict[str, Any], IncidentView]:
        """Read the incident, ask the policy, and sign what it allowed: the fields every
        update request of the action carries, and the incident as read."""
        view = await self.incident(incident_id)
        step = step_of(view, step_id) if step_id is not None else None
        verdict = self.authorize(action, principal, view, step)
        # MAC'd with the approval key, so the workflow can tell the API allowed it.
        grant = grants.issue(
            self._deployment.approval_key,
            incident_id=view.incident_id,
            step_id=step_id,
            action=action,
            principal_id=principal.id,
            decision_id=verdict.decision_id or "",
        )
        fields: dict[str, Any] = {
            "principal": principal,
            "authz_decision_id": verdict.decision_id,
            "incident_id": view.incident_id,  # the workflow refuses it for any other incident
            "grant": grant,
        }
        if step_id is not None:
            fields["step_id"] = step_id
        return fields, view

    # --- automation (the city record) --------------------------------------------------

    async def automation(self) -> CityView:
        try:
            return await self._deployment.city.view()
        except temporal.Unavailable as exc:
            raise Unavailable(f"the city record cannot be read: {exc.message}") from None

    async def set_automation(
        self, principal: Principal, change: Literal["pause", "resume"], *, reason: str
    ) -> CityView:
        """Pause or resume automatic containment city-wide (the kill switch)."""
        verdict = self.authorize(change, principal)
        request = AutomationChange(
            principal=principal, reason=reason, authz_decision_id=verdict.decision_id
        )
        try:
            view = await self._deployment.city.set_paused(request, paused=change == "pause")
        except temporal.Unavailable as exc:
            raise Unavailable(f"Temporal did not take the {change}: {exc.message}") from None
        log.warning("automation.changed", paused=view.paused, principal=principal.name)
        return view


async def _sent(name: str, incident_id: str, update: Awaitable[T]) -> T:
    """The update's result, or why the incident did not take it."""
    try:
        return await update
    except temporal.Refused as exc:
        raise Conflict(exc.message) from None
    except temporal.NotFound:
        raise Conflict(f"incident {incident_id} is closed; nothing to {name}") from None
    except temporal.UpdateFailed as exc:
        raise Failed(f"the incident could not apply {name}: {exc.message}") from None
    except temporal.Unavailable as exc:
        raise Unavailable(f"Temporal did not take the {name}: {exc.message}") from None
