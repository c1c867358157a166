"""Who is calling: bearer tokens of the principal store (401 problem+json otherwise)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.problems import Problem
from workflows.state import Principal

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
    principal = context.principals.authenticate(token.strip())
    if principal is None:
        raise Problem(401, "unknown or revoked token", slug="unauthenticated", headers=CHALLENGE)
    return principal
