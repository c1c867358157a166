"""Who is calling: an OIDC JWT when OIDC is configured, else a bearer token of the
principal store (401 problem+json otherwise)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from contracts.incident import Principal
from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.problems import Problem
from orchestrator.responders.oidc import InvalidIdentityToken, looks_like_jwt

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bulkhead"'}


def current_principal(
    request: Request, context: Annotated[ApiContext, Depends(get_context)]
) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "send Authorization: Bearer <token> (see `bulkhead principals add`)",
            slug="unauthenticated",
            headers=CHALLENGE,
        )
    token = token.strip()
    if context.oidc is not None and looks_like_jwt(token):
        try:
            return context.oidc.verify(token)
        except InvalidIdentityToken as exc:
            raise Problem(401, str(exc), slug="unauthenticated", headers=CHALLENGE) from exc
    principal = context.principals.authenticate(token)
    if principal is None:
        raise Problem(401, "unknown or revoked token", slug="unauthenticated", headers=CHALLENGE)
    return principal
