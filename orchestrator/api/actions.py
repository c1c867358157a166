"""Responder actions: approve, deny, extend, release, pause/resume automation.

Every call is authenticated (bearer token), authorized by the approval policy in Rego
(`data.bulkhead.approval.allow`, never by ifs here), and then sent to the workflow as an
Update whose validator enforces the incident's own rules (state, four-eyes, roles).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from contracts.city import AutomationChange
from contracts.incident import (
    ApproveRequest,
    DenyRequest,
    ExtendRequest,
    Grant,
    IncidentView,
    Principal,
    ReleaseRequest,
    StepView,
)
from contracts.names import ErrorType
from orchestrator.api.access import BEARER, Reader
from orchestrator.api.auth import current_principal
from orchestrator.api.body import json_body
from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.incidents import fetch_incident
from orchestrator.api.listing import incident_key
from orchestrator.api.problems import Problem, temporal_unavailable
from orchestrator.policy.base import Authorization
from orchestrator.responders import grants

log = structlog.get_logger(__name__)
router = APIRouter()
UPDATE_TIMEOUT = timedelta(seconds=10)
RELEASE_TIMEOUT = timedelta(seconds=60)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonBody(_Body):
    reason: str = Field(min_length=1, max_length=2000, description="why, for the audit trail")


MAX_LEASE_S = 7 * 24 * 3600


class ExtendBody(_Body):
    lease_s: int = Field(gt=0, le=MAX_LEASE_S, description="seconds added to the lease")
    reason: str = Field(default="", max_length=2000)


Caller = Annotated[Principal, Depends(current_principal)]
# Declared after Caller in every route: the body is read only once the caller is known.
Reason = Annotated[ReasonBody, Depends(json_body(ReasonBody))]
Extension = Annotated[ExtendBody, Depends(json_body(ExtendBody))]


def _takes(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a route that reads its body in a dependency (FastAPI cannot see it)."""
    return {
        "security": BEARER,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        },
    }


Context = Annotated[ApiContext, Depends(get_context)]


def _step(view: IncidentView, step_id: str) -> StepView:
    for step in view.steps:
        if step.id == step_id:
            return step
    raise Problem(404, f"incident {view.incident_id} has no step {step_id!r}", slug="unknown-step")


def _zones(view: IncidentView) -> list[str]:
    return sorted({r.zone for f in view.findings for r in f.resources if r.zone})


def authorize(
    context: ApiContext,
    action: str,
    principal: Principal,
    view: IncidentView | None = None,
    step: StepView | None = None,
) -> Authorization:
    """Ask the approval policy; 403 with its reasons when it says no (or cannot say)."""
    if context.engine is None:
        raise Problem(
            503,
            "no policy is loaded, so no action can be authorized",
            slug="no-policy",
            headers={"Retry-After": "5"},
        )
    verdict = context.engine.authorize(authorization_request(action, principal, view, step))
    log.info(
        "authz",
        action=action,
        principal=principal.name,
        allow=verdict.allow,
        decision_id=verdict.decision_id,
        incident_id=view.incident_id if view else None,
    )
    if not verdict.allow:
        reasons = "; ".join(verdict.reasons) or "the approval policy does not allow it"
        raise Problem(
            403,
            f"{principal.name} may not {action}: {reasons}",
            slug="forbidden",
            decision_id=verdict.decision_id,
        )
    return verdict


def authorization_request(
    action: str,
    principal: Principal,
    view: IncidentView | None = None,
    step: StepView | None = None,
) -> dict[str, Any]:
    """The approval policy's input (see `Authorization`); the console asks it ahead of
    time, to show each button enabled or disabled, with exactly what `authorize` sends."""
    return {
        "action": action,
        "principal": principal.model_dump(),
        "incident": None
        if view is None
        else {"incident_id": view.incident_id, "status": view.status.value, "zones": _zones(view)},
        "step": None
        if step is None
        else {
            "id": step.id,
            "adapter": step.adapter,
            "action": step.action,
            "target": step.target,
            "reversible": step.reversible,
            "approval": {
                "required": step.required_approvals,
                "roles": step.approval_roles,
                "must_include_roles": step.must_include_roles,
            },
            # Four-eyes in the policy compares ids; the name is only for its reasons.
            "approvals": [
                {"principal": a.principal, "principal_id": a.principal_id, "roles": a.roles}
                for a in step.approvals
            ],
        },
    }


async def _update(
    context: ApiContext,
    incident_id: str,
    name: str,
    payload: BaseModel,
    *,
    result_type: type[Any],
    wait: timedelta = UPDATE_TIMEOUT,
) -> Any:
    handle = context.client.get_workflow_handle(incident_key(incident_id))
    try:
        return await handle.execute_update(name, payload, result_type=result_type, rpc_timeout=wait)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == ErrorType.REFUSED:
            raise Problem(409, cause.message, slug="conflict") from None
        raise Problem(500, f"the incident could not apply {name}: {cause}") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Problem(
                409, f"incident {incident_id} is closed; nothing to {name}", slug="conflict"
            ) from None
        raise temporal_unavailable(f"Temporal did not take the {name}: {exc.message}") from None


async def step_action(
    context: ApiContext,
    principal: Principal,
    incident_id: str,
    step_id: str,
    *,
    action: str,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """Authorize one action on one step with the policy, then send it as an Update."""
    view = await fetch_incident(context, incident_id)
    step = _step(view, step_id)
    verdict = authorize(context, action, principal, view, step)
    request = STEP_REQUESTS[action](
        step_id=step_id,
        principal=principal,
        authz_decision_id=verdict.decision_id,
        incident_id=view.incident_id,  # the workflow refuses it for any other incident
        grant=_grant(
            context,
            view,
            principal,
            action=action,
            step_id=step_id,
            decision_id=verdict.decision_id,
        ),
        **fields,
    )
    updated: StepView = await _update(context, incident_id, action, request, result_type=StepView)
    return updated.model_dump(mode="json")


def _grant(
    context: ApiContext,
    view: IncidentView,
    principal: Principal,
    *,
    action: str,
    step_id: str | None,
    decision_id: str | None,
) -> Grant:
    """What the policy just allowed, MAC'd so the workflow can tell it came from here."""
    return grants.issue(
        context.approval_key,
        incident_id=view.incident_id,
        step_id=step_id,
        action=action,
        principal_id=principal.id,
        decision_id=decision_id or "",
    )


STEP_REQUESTS: dict[str, type[ApproveRequest] | type[DenyRequest] | type[ExtendRequest]] = {
    "approve": ApproveRequest,
    "deny": DenyRequest,
    "extend": ExtendRequest,
}


@router.post(
    "/v1/incidents/{incident_id}/steps/{step_id}/approve", openapi_extra=_takes(ReasonBody)
)
async def approve(
    incident_id: str, step_id: str, principal: Caller, body: Reason, context: Context
) -> dict[str, Any]:
    return await step_action(
        context, principal, incident_id, step_id, action="approve", fields={"reason": body.reason}
    )


@router.post("/v1/incidents/{incident_id}/steps/{step_id}/deny", openapi_extra=_takes(ReasonBody))
async def deny(
    incident_id: str, step_id: str, principal: Caller, body: Reason, context: Context
) -> dict[str, Any]:
    return await step_action(
        context, principal, incident_id, step_id, action="deny", fields={"reason": body.reason}
    )


@router.post("/v1/incidents/{incident_id}/steps/{step_id}/extend", openapi_extra=_takes(ExtendBody))
async def extend(
    incident_id: str, step_id: str, principal: Caller, body: Extension, context: Context
) -> dict[str, Any]:
    fields = {"lease_s": body.lease_s, "reason": body.reason}
    return await step_action(
        context, principal, incident_id, step_id, action="extend", fields=fields
    )


@router.post("/v1/incidents/{incident_id}/release", openapi_extra=_takes(ReasonBody))
async def release(
    incident_id: str, principal: Caller, body: Reason, context: Context
) -> dict[str, Any]:
    return await release_incident(context, principal, incident_id, reason=body.reason)


async def release_incident(
    context: ApiContext, principal: Principal, incident_id: str, *, reason: str
) -> dict[str, Any]:
    """Authorize a release with the policy, then send it as an Update (the saga reverts)."""
    view = await fetch_incident(context, incident_id)
    verdict = authorize(context, "release", principal, view)
    request = ReleaseRequest(
        principal=principal,
        reason=reason,
        authz_decision_id=verdict.decision_id,
        incident_id=view.incident_id,
        grant=_grant(
            context,
            view,
            principal,
            action="release",
            step_id=None,
            decision_id=verdict.decision_id,
        ),
    )
    released: IncidentView = await _update(
        context, incident_id, "release", request, result_type=IncidentView, wait=RELEASE_TIMEOUT
    )
    return released.model_dump(mode="json")


@router.get("/v1/automation", openapi_extra={"security": BEARER})
async def automation(_reader: Reader, context: Context) -> dict[str, Any]:
    try:
        view = await context.city.view()
    except RPCError as exc:
        raise temporal_unavailable(f"the city record cannot be read: {exc.message}") from None
    return {**view.model_dump(mode="json"), "active_containments": view.active_containments}


@router.post("/v1/automation/{change}", openapi_extra=_takes(ReasonBody))
async def set_automation(
    change: str, principal: Caller, body: Reason, context: Context
) -> dict[str, Any]:
    if change not in ("pause", "resume"):
        raise Problem(404, f"no automation action {change!r}; use pause or resume")
    verdict = authorize(context, change, principal)
    request = AutomationChange(
        principal=principal, reason=body.reason, authz_decision_id=verdict.decision_id
    )
    try:
        view = await context.city.set_paused(request, paused=change == "pause")
    except RPCError as exc:
        raise temporal_unavailable(f"Temporal did not take the {change}: {exc.message}") from None
    log.warning("automation.changed", paused=view.paused, principal=principal.name)
    return {**view.model_dump(mode="json"), "active_containments": view.active_containments}
