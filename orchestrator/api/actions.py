"""Responder actions over HTTP: approve, deny, extend, release, pause/resume automation.

Every call is authenticated here (bearer token); what it does is the responder service's
(orchestrator.responders.service): the approval policy in Rego authorizes it, and the
workflow's Update validator enforces the incident's own rules. The service's domain
errors become problem+json at this edge (api/problems.py `responder_problem`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from contracts.city import CityView
from contracts.incident import Principal
from orchestrator.api.access import BEARER, Reader
from orchestrator.api.auth import current_principal
from orchestrator.api.body import json_body
from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.problems import Problem
from orchestrator.responders.bodies import ExtendBody, ReasonBody
from orchestrator.responders.service import Responders

# The bodies are re-exported: api/openapi.py documents them from here.
__all__ = ["ExtendBody", "ReasonBody", "router"]
router = APIRouter()

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


def _responders(context: Annotated[ApiContext, Depends(get_context)]) -> Responders:
    return Responders(context)


Service = Annotated[Responders, Depends(_responders)]


@router.post(
    "/v1/incidents/{incident_id}/steps/{step_id}/approve", openapi_extra=_takes(ReasonBody)
)
async def approve(
    incident_id: str, step_id: str, principal: Caller, body: Reason, service: Service
) -> dict[str, Any]:
    step = await service.approve(principal, incident_id, step_id, reason=body.reason)
    return step.model_dump(mode="json")


@router.post("/v1/incidents/{incident_id}/steps/{step_id}/deny", openapi_extra=_takes(ReasonBody))
async def deny(
    incident_id: str, step_id: str, principal: Caller, body: Reason, service: Service
) -> dict[str, Any]:
    step = await service.deny(principal, incident_id, step_id, reason=body.reason)
    return step.model_dump(mode="json")


@router.post("/v1/incidents/{incident_id}/steps/{step_id}/extend", openapi_extra=_takes(ExtendBody))
async def extend(
    incident_id: str, step_id: str, principal: Caller, body: Extension, service: Service
) -> dict[str, Any]:
    step = await service.extend(
        principal, incident_id, step_id, lease_s=body.lease_s, reason=body.reason
    )
    return step.model_dump(mode="json")


@router.get("/v1/incidents/{incident_id}/release-preview", openapi_extra={"security": BEARER})
async def release_preview(
    incident_id: str, _reader: Reader, service: Service, step: str | None = None
) -> dict[str, Any]:
    """What releasing the incident (or, with `?step=`, one step) would undo, now."""
    preview = await service.release_preview(incident_id, step)
    return preview.model_dump(mode="json")


@router.post("/v1/incidents/{incident_id}/release", openapi_extra=_takes(ReasonBody))
async def release(
    incident_id: str, principal: Caller, body: Reason, service: Service
) -> dict[str, Any]:
    """Undo every held step; the answer is the incident, with `release_report`: what was
    reverted, what could not be and why, and what stayed."""
    released, report = await service.release(principal, incident_id, reason=body.reason)
    return {**released.model_dump(mode="json"), "release_report": report.model_dump(mode="json")}


@router.post(
    "/v1/incidents/{incident_id}/steps/{step_id}/release", openapi_extra=_takes(ReasonBody)
)
async def release_step(
    incident_id: str, step_id: str, principal: Caller, body: Reason, service: Service
) -> dict[str, Any]:
    """Undo one held step; the incident's other steps stay. The answer is the step, with
    `release_report`."""
    step, report = await service.release_step(principal, incident_id, step_id, reason=body.reason)
    return {**step.model_dump(mode="json"), "release_report": report.model_dump(mode="json")}


def _automation(view: CityView) -> dict[str, Any]:
    return {**view.model_dump(mode="json"), "active_containments": view.active_containments}


@router.get("/v1/automation", openapi_extra={"security": BEARER})
async def automation(_reader: Reader, service: Service) -> dict[str, Any]:
    return _automation(await service.automation())


@router.post("/v1/automation/{change}", openapi_extra=_takes(ReasonBody))
async def set_automation(
    change: str, principal: Caller, body: Reason, service: Service
) -> dict[str, Any]:
    if change == "pause":
        view = await service.set_automation(principal, "pause", reason=body.reason)
    elif change == "resume":
        view = await service.set_automation(principal, "resume", reason=body.reason)
    else:
        raise Problem(404, f"no automation action {change!r}; use pause or resume")
    return _automation(view)
