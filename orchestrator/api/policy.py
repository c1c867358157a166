"""`GET /v1/policy` (what serves, and the last rejected change) and the dry run
`POST /v1/policy/evaluate` (a decision for findings or an input; nothing is contained).

Dry runs run in worker processes with a bounded queue (orchestrator.api.dry_runs).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from orchestrator.api.access import BEARER, Reader
from orchestrator.api.body import check_media_type, read_limited
from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.dry_runs import DryRuns, shared_dry_runs
from orchestrator.api.problems import Problem
from orchestrator.policy.base import PolicyEngine

router = APIRouter()


def _engine(context: ApiContext) -> PolicyEngine:
    if context.engine is None:
        raise Problem(503, "no policy is loaded", slug="no-policy", headers={"Retry-After": "5"})
    return context.engine


def dry_runs_of(context: Annotated[ApiContext, Depends(get_context)]) -> DryRuns:
    return shared_dry_runs(context.settings.evaluate_concurrency)


@router.get("/v1/policy", openapi_extra={"security": BEARER})
async def get_policy(
    _reader: Reader, context: Annotated[ApiContext, Depends(get_context)]
) -> dict[str, Any]:
    return _engine(context).status().as_dict()


EVALUATE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "description": "a policy input, {findings: [...]}, one finding or a list",
                "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}],
            }
        }
    },
}


@router.post(
    "/v1/policy/evaluate",
    openapi_extra={"security": BEARER, "requestBody": EVALUATE_BODY},
    response_class=Response,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def evaluate(
    request: Request,
    _reader: Reader,
    context: Annotated[ApiContext, Depends(get_context)],
    runs: Annotated[DryRuns, Depends(dry_runs_of)],
    *,
    explain: Annotated[bool, Query(description="add per-step notes and evaluated lines")] = False,
) -> Response:
    """Dry run. Body: a policy input, `{"findings": [...], "incident_id"?, "automation_paused"?,
    "active_containments"?}`, one OCSF finding, or a list of findings."""
    engine = _engine(context)
    check_media_type(request)
    raw = await read_limited(request, context.settings.max_body_bytes)
    body = await runs.evaluate(engine, context.settings.policy_dir, raw, explain=explain)
    return Response(body, media_type="application/json")
