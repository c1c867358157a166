"""Who may read: every `/v1` read needs a principal; `/metrics` is loopback or a token.

Incidents name compromised assets, accounts and addresses, carry the SIEMs' raw payloads,
and the policy dry run lets a caller probe the inventory and the guardrails: none of it
is for anonymous callers. Any known role (viewer and up) may read; what a principal may
*do* is still the approval policy's decision (orchestrator.api.actions).
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import Depends, Request

from contracts.incident import Principal
from orchestrator.api.auth import CHALLENGE, current_principal
from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.problems import Problem
from orchestrator.responders.principals import ROLES

# The OpenAPI `security` of every route that needs a principal (see openapi.rewrite).
BEARER: list[dict[str, list[str]]] = [{"bearerToken": []}]


def current_reader(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller, if it holds any role Bulkhead knows (viewer or higher); 403 otherwise."""
    if not set(principal.roles) & set(ROLES):
        raise Problem(
            403,
            f"{principal.name} holds no Bulkhead role; reading needs viewer or higher",
            slug="forbidden",
        )
    return principal


Reader = Annotated[Principal, Depends(current_reader)]


def metrics_caller(request: Request, context: Annotated[ApiContext, Depends(get_context)]) -> None:
    """Prometheus convention: metrics on loopback by default; a bearer token when set."""
    settings = context.settings
    if not settings.metrics_public and not _loopback(request):
        raise Problem(
            403,
            "metrics are served to loopback clients only (set metrics_public to change this)",
            slug="forbidden",
        )
    if settings.metrics_token is None:
        return
    scheme, _, offered = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        offered.strip().encode(), expected.encode()
    ):
        raise Problem(
            401, "send the metrics bearer token", slug="unauthenticated", headers=CHALLENGE
        )


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
