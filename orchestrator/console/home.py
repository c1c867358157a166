"""The console's home page: the city right now, live.

It shows the city picture (orchestrator.city: the map, and a table of the same facts as
its text alternative), the automation state with pause and resume controls, the
approvals waiting and the incidents recently escalated or released. Pause and resume go
through the responder service the JSON API's `POST /v1/automation/{pause,resume}` calls:
the same approval policy, the same city record update.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from contracts.incident import Principal
from orchestrator.api.context import ApiContext
from orchestrator.api.problems import Problem, responder_problem
from orchestrator.city import draw
from orchestrator.city.gather import CityUnavailable, gather
from orchestrator.city.model import STATE_WORDS, CityPicture
from orchestrator.console import chrome, live, views
from orchestrator.console.render import fragment, page
from orchestrator.console.session import principal_of
from orchestrator.console.visit import Visit, to_login, visit_of
from orchestrator.responders.bodies import ReasonBody
from orchestrator.responders.errors import ResponderError
from orchestrator.responders.service import Responders

log = structlog.get_logger(__name__)
LIVE_URL = "/console/now/events"
# Every open home page re-reads the picture every LIST_POLL_S; they share one reading
# this young, so ten open pages cost what one does.
PICTURE_TTL_S = 1.5
DONE = {
    "pause": "Automation is paused: every step now waits for a person.",
    "resume": "Automation is resumed.",
}


class Pictures:
    """The city picture, read at most once per PICTURE_TTL_S for all pages of one app."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._at = float("-inf")
        self._picture: CityPicture | None = None

    async def read(self, context: ApiContext) -> CityPicture:
        async with self._lock:
            if self._picture is None or time.monotonic() - self._at >= PICTURE_TTL_S:
                self._picture = await gather(context)
                self._at = time.monotonic()
            return self._picture

    def forget(self) -> None:
        """After a change made here, the next page shows it, not a reading from before."""
        self._picture = None


def pictures(app: FastAPI) -> Pictures:
    shared = getattr(app.state, "city_pictures", None)
    if not isinstance(shared, Pictures):
        shared = app.state.city_pictures = Pictures()
    return shared


async def _now(visit: Visit) -> dict[str, Any]:
    """The live region's context: the picture, its map, and the automation controls."""
    principal = principal_of(visit.session, visit.context.principals)
    if principal is None:
        raise Problem(401, "your session ended; log in again")
    try:
        picture = await pictures(visit.request.app).read(visit.context)
    except CityUnavailable as exc:
        raise Problem(503, f"the city cannot be read now: {exc}") from None
    pause, resume = await views.dry_authorize(
        visit.context, principal, [("pause", None, None), ("resume", None, None)]
    )
    return {
        "picture": picture,
        "city_map": Markup(draw.render(picture)),  # noqa: S704 - escaped by orchestrator.city.svg
        "state_words": STATE_WORDS,
        "buttons": {"pause": pause, "resume": resume},
    }


async def home(request: Request) -> Response:
    visit = visit_of(request)
    if visit.principal is None:
        return to_login(request)
    done = request.query_params.get("done", "")
    return await _home(visit, notice=DONE.get(done))


async def _home(
    visit: Visit,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    try:
        now = await _now(visit)
    except Problem as problem:
        if error is None:
            error, status = problem.detail, problem.status
        now = {"picture": None, "city_map": None, "state_words": STATE_WORDS, "buttons": {}}
    return page(
        "home.html",
        status=status,
        error=error,
        notice=notice,
        form=form or {},
        live_url=LIVE_URL,
        **now,
        **await chrome.around(visit, "now"),
    )


async def home_events(request: Request) -> Response:
    visit = visit_of(request)
    if visit.principal is None:
        return live.logged_out()
    csrf = visit.session.csrf if visit.session else ""

    async def render() -> str:
        return fragment("_home_live.html", form={}, csrf=csrf, **await _now(visit))

    return live.stream(visit.console.streams, render, visit.still_logged_in, listing=True)


async def _change(visit: Visit, principal: Principal, fields: dict[str, str]) -> None:
    action = fields["action"]
    if action not in ("pause", "resume"):
        raise Problem(400, f"unknown action {action!r}: pause or resume")
    body = ReasonBody(reason=fields["reason"].strip())
    service = Responders(visit.context)
    if action == "pause":
        await service.set_automation(principal, "pause", reason=body.reason)
    else:
        await service.set_automation(principal, "resume", reason=body.reason)


async def automation(request: Request) -> Response:
    """Pause or resume automatic containment from the home page's form."""
    visit = visit_of(request)
    form = await request.form()
    if visit.principal is None or visit.session is None:
        return to_login(request, "/console")
    if not visit.session.csrf_ok(form.get("csrf")):
        problem = Problem(
            403, "the form's CSRF token does not match your session; reload the page and retry"
        )
        return await chrome.error_page(visit, problem)
    fields = {name: str(form.get(name, "")) for name in ("action", "reason")}
    try:
        await _change(visit, visit.principal, fields)
        pictures(request.app).forget()
    except ValidationError:
        problem = Problem(422, "reason: a reason is required", slug="invalid-request")
    except ResponderError as refused:
        problem = responder_problem(refused)
    except Problem as refused:
        problem = refused
    else:
        return RedirectResponse(f"/console?done={fields['action']}", status_code=303)
    log.info("console.automation_refused", action=fields["action"], status=problem.status)
    return await _home(visit, status=problem.status, error=problem.detail, form=fields)
