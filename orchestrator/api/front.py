"""The webhook route's short way in: `POST /v1/webhooks/{source}` skips FastAPI's router.

In an alert storm this route is nearly every request, and py-spy put about a fifth of the
API process's samples in the layers between uvicorn and the handler: Starlette's
exception and exit-stack middleware, matching the path against every route, FastAPI's
request wrapper and parameter solving. Here the request meets the same limits
(`RequestLimits`), the same handler (`webhooks.receive`), and a problem it raises is
rendered by the same function as the app's exception handler (`problems.rendered`).
Any other path, and any other method on this one, goes through FastAPI unchanged.
"""

from __future__ import annotations

import re

import structlog
from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.api import problems, webhooks
from orchestrator.api.limits import RequestLimits
from orchestrator.config import Settings

log = structlog.get_logger(__name__)

# As Starlette matches the route's `{source}`: one path segment, already percent-decoded.
WEBHOOK_PATH = re.compile(r"/v1/webhooks/([^/]+)")


class BulkheadApi(FastAPI):
    """FastAPI, with the webhook route taken directly once `webhook_entry` is set."""

    webhook_entry: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self.webhook_entry
        if entry is not None and scope["type"] == "http" and scope["method"] == "POST":
            match = WEBHOOK_PATH.fullmatch(scope["path"])
            if match is not None:
                scope["app"] = self  # what Starlette sets: the handler reads app.state
                scope["path_params"] = {"source": match[1]}
                await entry(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def webhook_entry(settings: Settings) -> ASGIApp:
    """The webhook handler behind the request limits every route meets."""

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await webhooks.receive(scope["path_params"]["source"], request)
        except problems.Problem as exc:
            response = problems.rendered(exc, request.url.path)
        except Exception:  # as the app's own handler for anything unexpected: a 500 problem
            log.exception("api.unhandled", method="POST", path=request.url.path)
            response = problems.unexpected(request.url.path)
        await response(scope, receive, send)

    return RequestLimits(
        handle, max_body_bytes=settings.max_body_bytes, body_timeout_s=settings.http_body_timeout_s
    )
