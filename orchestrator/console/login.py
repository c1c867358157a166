"""Logging in with a token and out again; the login form is CSRF-protected too."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from orchestrator.api.problems import Problem
from orchestrator.console.render import page
from orchestrator.console.session import Session, login_key
from orchestrator.console.visit import (
    bounce,
    cross_site_without_cookie,
    error_page,
    safe_next,
    visit_of,
)

log = structlog.get_logger(__name__)
router = APIRouter()


def _login_page(
    session: Session,
    target: str,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
) -> Response:
    return page(
        "login.html",
        status=status,
        csrf=session.csrf,
        next=target,
        error=error,
        notice=notice,
        principal=None,
        nav="login",
    )


@router.get("/login")
async def login_form(request: Request) -> Response:
    visit = visit_of(request)
    target = safe_next(request.query_params.get("next"))
    if visit.principal is not None:
        return RedirectResponse(target, status_code=303)
    if cross_site_without_cookie(request):
        return bounce(request)  # and keep a session the browser did not show us
    session = visit.session or Session.anonymous()
    notice = None
    if request.query_params.get("bye"):
        notice = "You are logged out."
    elif request.query_params.get("lost"):
        notice = "Your session has ended, so nothing was done: log in and try again."
    response = _login_page(session, target, notice=notice)
    if visit.session is None:
        visit.console.sessions.write(response, request, session)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    visit = visit_of(request)
    form = await request.form()
    target = safe_next(form.get("next"))
    session = visit.session
    if session is None or not session.csrf_ok(form.get("csrf")):
        fresh = Session.anonymous()
        error = "This login form expired or did not come from the console; try again."
        response = _login_page(fresh, target, status=403, error=error)
        visit.console.sessions.write(response, request, fresh)
        return response
    token = str(form.get("token", "")).strip()
    principal = visit.context.principals.authenticate(token) if token else None
    key = login_key(principal, visit.context.principals) if principal else None
    if principal is None or key is None:
        log.info("console.login_refused")
        error = "Unknown or revoked token (see `bulkhead principals add`)."
        return _login_page(session, target, status=401, error=error)
    log.info("console.login", principal=principal.name, roles=principal.roles)
    response = RedirectResponse(target, status_code=303)
    visit.console.sessions.write(response, request, session.logged_in(principal.name, key))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    visit = visit_of(request)
    form = await request.form()
    if visit.session is None:
        return RedirectResponse("/console/login", status_code=303)
    if not visit.session.csrf_ok(form.get("csrf")):
        return error_page(visit, Problem(403, "the form's CSRF token does not match your session"))
    response = RedirectResponse("/console/login?bye=1", status_code=303)
    visit.console.sessions.end(response, request, visit.session)
    log.info("console.logout", principal=visit.principal.name if visit.principal else None)
    return response
