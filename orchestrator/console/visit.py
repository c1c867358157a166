"""Who is visiting the console: the app's session signer, the request's session and the
principal it names; where to send a visitor who is not logged in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from contracts.incident import Principal
from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.problems import Problem, problem_response
from orchestrator.console import live
from orchestrator.console.render import page
from orchestrator.console.session import COOKIE, Session, Sessions, principal_of


@dataclass
class Console:
    """Per application: the session signer and the count of open live streams."""

    sessions: Sessions
    streams: live.Streams


@dataclass(frozen=True)
class Visit:
    request: Request
    context: ApiContext
    console: Console
    session: Session | None
    principal: Principal | None

    def common(self, nav: str = "") -> dict[str, Any]:
        return {
            "principal": self.principal,
            "csrf": self.session.csrf if self.session else "",
            "nav": nav,
        }

    def still_logged_in(self) -> bool:
        return (
            self.session is not None
            and self.console.sessions.active(self.session)
            and principal_of(self.session, self.context.principals) is not None
        )


def visit_of(request: Request) -> Visit:
    context = get_context(request)
    console = getattr(request.app.state, "console", None)
    if not isinstance(console, Console):
        console = Console(Sessions.in_state_dir(context.settings.state_dir), live.Streams())
        request.app.state.console = console
    session = console.sessions.read(request)
    return Visit(request, context, console, session, principal_of(session, context.principals))


def safe_next(value: object) -> str:
    """Only a path inside the console: never an open redirect to another site."""
    if (
        isinstance(value, str)
        and value.startswith("/console")
        and "//" not in value
        and "\\" not in value
    ):
        return value
    return "/console"


def current_path(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def to_login(request: Request, target: str | None = None) -> Response:
    """A browser is sent to the login page; any other client gets 401 problem+json."""
    if not wants_html(request):
        return problem_response(
            401,
            "log in to the console, or call the /v1 API with Authorization: Bearer <token>",
            slug="unauthenticated",
            instance=request.url.path,
            headers={"WWW-Authenticate": 'Bearer realm="bulkhead"'},
        )
    if request.method == "GET" and cross_site_without_cookie(request):
        return bounce(request)
    query = {"next": target or current_path(request)}
    if request.method == "POST":
        query["lost"] = "1"  # the login page says the action was not carried out
    return RedirectResponse(f"/console/login?{urlencode(query)}", status_code=303)


def wants_html(request: Request) -> bool:
    """Browsers ask for text/html when they navigate or submit a form."""
    return "text/html" in request.headers.get("accept", "")


def cross_site_without_cookie(request: Request) -> bool:
    """A link followed from another site (chat, mail, a ticket): the browser withholds a
    SameSite=Strict cookie from that navigation, so no cookie proves nothing yet."""
    return COOKIE not in request.cookies and request.headers.get("sec-fetch-site") == "cross-site"


def bounce(request: Request) -> Response:
    """Load the same URL again from this site: then the browser sends the session cookie."""
    return page("bounce.html", here=current_path(request), principal=None, nav="")


def error_page(visit: Visit, problem: Problem) -> Response:
    return page(
        "error.html",
        status=problem.status,
        title=problem.slug.replace("-", " ").capitalize(),
        detail=problem.detail,
        **visit.common(),
    )
