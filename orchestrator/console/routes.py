"""The responder console at /console: server-rendered pages, forms, live updates.

Every action a form sends goes through the responder service the JSON API uses
(orchestrator.responders.service): the same Rego authorization, the same workflow
Update; its domain errors are shown on the page with the API's status and detail
(api/problems.py `responder_problem`).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import QueryParams

from contracts.incident import IncidentStatus, IncidentView, Principal
from orchestrator.api.context import ApiContext
from orchestrator.api.listing import ZONE_PATTERN, Filters, list_page
from orchestrator.api.problems import Problem, responder_problem
from orchestrator.console import chrome, home, live, login, timeline, views
from orchestrator.console.render import STATIC, fragment, page
from orchestrator.console.session import principal_of
from orchestrator.console.visit import Visit, to_login, visit_of
from orchestrator.ingest import raw_store
from orchestrator.responders.bodies import ExtendBody, ReasonBody
from orchestrator.responders.errors import ResponderError
from orchestrator.responders.links import step_anchor
from orchestrator.responders.service import Responders

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/console", include_in_schema=False)
router.include_router(login.router)
# The home page is the city right now (home.py); the incident list is /console/incidents.
router.add_api_route("", home.home, methods=["GET"])
router.add_api_route("/now/events", home.home_events, methods=["GET"])
router.add_api_route("/automation", home.automation, methods=["POST"])
CONSOLE_PAGE = 200  # incidents a console list shows (the API pages further)
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript"}
DONE = {
    "approve": "Your approval of step {step} is recorded.",
    "deny": "Step {step} is denied.",
    "extend": "The lease of step {step} is extended.",
    "release": "The incident is released: what it did is below.",
    "release_step": "Step {step} is released; the incident's other steps stay.",
}


def _invalid(exc: ValidationError) -> str:
    fields = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'form'}: {err['msg']}" for err in exc.errors()
    )
    return f"invalid form: {fields}"


# --- incident list ------------------------------------------------------------------------


def _filters(query: QueryParams) -> tuple[dict[str, Any], list[str]]:
    """The list's filters from the query string; what cannot be read is said, not dropped."""
    errors: list[str] = []
    chosen: dict[str, Any] = {"status": None, "zone": None, "severity": None}
    if raw := query.get("status"):
        try:
            chosen["status"] = IncidentStatus(raw)
        except ValueError:
            errors.append(f"unknown status {raw!r}")
    if raw := (query.get("zone") or "").strip():
        if re.fullmatch(ZONE_PATTERN, raw):
            chosen["zone"] = raw
        else:
            errors.append(f"no zone is called {raw!r}")
    if raw := query.get("severity"):
        if raw.isdigit() and 0 <= int(raw) <= 99:
            chosen["severity"] = int(raw)
        else:
            errors.append(f"severity must be a number from 0 to 99, not {raw!r}")
    return chosen, errors


async def _incident_rows(context: ApiContext, chosen: dict[str, Any]) -> list[dict[str, Any]]:
    rows, _ = await list_page(context, Filters(**chosen), limit=CONSOLE_PAGE)
    return rows


@router.get("/incidents")
async def incidents(request: Request) -> Response:
    visit = visit_of(request)
    if visit.principal is None:
        return to_login(request)
    chosen, errors = _filters(request.query_params)
    status = 400 if errors else 200
    try:
        rows = await _incident_rows(visit.context, chosen)
    except Problem as problem:
        rows, status = [], problem.status
        errors.append(problem.detail)
    query = urlencode({k: v for k, v in request.query_params.items() if v})
    return page(
        "incidents.html",
        status=status,
        rows=rows,
        chosen=chosen,
        errors=errors,
        statuses=list(IncidentStatus),
        live_url="/console/events" + (f"?{query}" if query else ""),
        **await chrome.around(visit, "incidents"),
    )


@router.get("/events")
async def incidents_events(request: Request) -> Response:
    visit = visit_of(request)
    if visit.principal is None:
        return live.logged_out()
    chosen, _ = _filters(request.query_params)

    async def render() -> str:
        rows = await _incident_rows(visit.context, chosen)
        return fragment("_incidents_live.html", rows=rows)

    return live.stream(visit.console.streams, render, visit.still_logged_in, listing=True)


async def _read(context: ApiContext, incident_id: str) -> IncidentView:
    """One incident, or the Problem the page and the live stream show instead."""
    try:
        return await Responders(context).incident(incident_id)
    except ResponderError as error:
        raise responder_problem(error) from None


# --- pending approvals --------------------------------------------------------------------


async def _pending(visit: Visit) -> list[views.Pending]:
    principal = principal_of(visit.session, visit.context.principals)
    if principal is None:
        raise Problem(401, "your session ended; log in again")
    # The same visibility query as the API's ?awaiting_approval=true, then each one read.
    rows, _ = await list_page(visit.context, Filters(awaiting_approval=True), limit=CONSOLE_PAGE)
    waiting = await asyncio.gather(*(_read(visit.context, r["incident_id"]) for r in rows))
    return await views.pending_approvals(visit.context, principal, waiting)


@router.get("/approvals")
async def approvals(request: Request) -> Response:
    visit = visit_of(request)
    if visit.principal is None:
        return to_login(request)
    error, status = None, 200
    try:
        rows = await _pending(visit)
    except Problem as problem:
        rows, error, status = [], problem.detail, problem.status
    return page(
        "approvals.html",
        status=status,
        rows=rows,
        error=error,
        notice=None,
        live_url="/console/approvals/events",
        **await chrome.around(visit, "approvals"),
    )


@router.get("/approvals/events")
async def approvals_events(request: Request) -> Response:
    visit = visit_of(request)
    if visit.principal is None:
        return live.logged_out()

    async def render() -> str:
        return fragment("_approvals_live.html", rows=await _pending(visit))

    return live.stream(visit.console.streams, render, visit.still_logged_in, listing=True)


# --- one incident -------------------------------------------------------------------------


async def _incident_context(visit: Visit, incident_id: str) -> dict[str, Any]:
    principal = principal_of(visit.session, visit.context.principals)
    if principal is None:
        raise Problem(401, "your session ended; log in again")
    view = await _read(visit.context, incident_id)
    shown = await views.incident_page(visit.context, principal, view)
    return {**shown, "timeline": timeline.of(view.audit)}


async def _incident(
    visit: Visit,
    incident_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    try:
        shown = await _incident_context(visit, incident_id)
    except Problem as problem:
        # After a refused action, what was refused matters more than why the page failed.
        return await chrome.error_page(visit, Problem(status, error) if error else problem)
    return page(
        "incident.html",
        status=status,
        error=error,
        notice=notice,
        form=form or {},
        live_url=f"/console/incidents/{quote(incident_id, safe='')}/events",
        **shown,
        **await chrome.around(visit, "incident"),
    )


@router.get("/incidents/{incident_id}")
async def incident(request: Request, incident_id: str) -> Response:
    visit = visit_of(request)
    if visit.principal is None:
        return to_login(request)
    done = request.query_params.get("done", "")
    notice = DONE[done].format(step=request.query_params.get("step", "")) if done in DONE else None
    return await _incident(visit, incident_id, notice=notice)


@router.get("/incidents/{incident_id}/events")
async def incident_events(request: Request, incident_id: str) -> Response:
    visit = visit_of(request)
    if visit.principal is None:
        return live.logged_out()
    csrf = visit.session.csrf if visit.session else ""

    async def render() -> str:
        shown = await _incident_context(visit, incident_id)
        return fragment("_incident_live.html", form={}, csrf=csrf, **shown)

    return live.stream(visit.console.streams, render, visit.still_logged_in)


async def _act(
    visit: Visit, principal: Principal, incident_id: str, action: str, fields: dict[str, str]
) -> None:
    """Carry out one form's action through the responder service, as the API does."""
    service = Responders(visit.context)
    reason = fields["reason"].strip()
    if action in ("approve", "deny"):
        body = ReasonBody(reason=reason)
        act_on = service.approve if action == "approve" else service.deny
        await act_on(principal, incident_id, fields["step"], reason=body.reason)
    elif action == "extend":
        extend = ExtendBody.model_validate({"lease_s": fields["lease_s"] or None, "reason": reason})
        await service.extend(
            principal, incident_id, fields["step"], lease_s=extend.lease_s, reason=extend.reason
        )
    elif action == "release":
        body = ReasonBody(reason=reason)
        await service.release(principal, incident_id, reason=body.reason)
    elif action == "release_step":
        body = ReasonBody(reason=reason)
        await service.release_step(principal, incident_id, fields["step"], reason=body.reason)
    else:
        raise Problem(
            400, f"unknown action {action!r}: approve, deny, extend, release or release_step"
        )


@router.post("/incidents/{incident_id}/actions")
async def act(request: Request, incident_id: str) -> Response:
    visit = visit_of(request)
    form = await request.form()
    page_url = f"/console/incidents/{quote(incident_id, safe='')}"
    if visit.principal is None or visit.session is None:
        return to_login(request, page_url)
    if not visit.session.csrf_ok(form.get("csrf")):
        problem = Problem(
            403, "the form's CSRF token does not match your session; reload the page and retry"
        )
        return await chrome.error_page(visit, problem)
    fields = {name: str(form.get(name, "")) for name in ("action", "step", "reason", "lease_s")}
    action = fields["action"]
    try:
        await _act(visit, visit.principal, incident_id, action, fields)
    except ValidationError as exc:
        problem = Problem(422, _invalid(exc), slug="invalid-request")
    except ResponderError as error:
        problem = responder_problem(error)
    except Problem as refused:
        problem = refused
    else:
        query = urlencode({"done": action, "step": fields["step"]})
        anchor = f"#{step_anchor(fields['step'])}" if fields["step"] else ""
        return RedirectResponse(f"{page_url}?{query}{anchor}", status_code=303)
    log.info("console.action_refused", action=action, status=problem.status)
    return await _incident(
        visit, incident_id, status=problem.status, error=problem.detail, form=fields
    )


# --- raw payloads (claim check) ----------------------------------------------------------


@router.get("/raw/{sha256}")
async def raw_payload(request: Request, sha256: str) -> Response:
    """A finding's raw SIEM payload, as the sender posted it. It is attacker-controlled
    text: served as JSON, never sniffed, in a sandbox that runs nothing."""
    visit = visit_of(request)
    if visit.principal is None:
        return to_login(request)
    try:
        body = await raw_store.get(visit.context.raw_store, sha256)
    except raw_store.RawStoreError as exc:
        return await chrome.error_page(visit, Problem(503, str(exc), slug="raw-store-unavailable"))
    if body is None:
        missing = Problem(404, f"no raw payload with sha256 {sha256[:64]}", slug="unknown-payload")
        return await chrome.error_page(visit, missing)
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, no-store",
    }
    return Response(body, media_type="application/json", headers=headers)


# --- static files -------------------------------------------------------------------------


@router.get("/static/{name}")
async def static(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return Response("not found", status_code=404, media_type="text/plain")
    body = (STATIC / name).read_bytes()
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(body, media_type=media_type, headers=headers)
