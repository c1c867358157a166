"""`GET /v1/policy` (what serves, and the last rejected change) and the dry run
`POST /v1/policy/evaluate` (a decision for findings or an input; nothing is contained).

Both handlers are `async def` on purpose: the embedded engine's regorus objects belong to
the thread that made them, and that is the event loop's (never a threadpool worker).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.problems import Problem
from orchestrator.inventory import Inventory
from orchestrator.policy.base import PolicyEngine
from orchestrator.policy.dryrun import DryRunError, policy_input_from
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.explain import explain as explain_decision
from orchestrator.policy.status import DescribesItself

router = APIRouter()


def _engine(context: ApiContext) -> PolicyEngine:
    if context.engine is None:
        raise Problem(503, "no policy is loaded", slug="no-policy", headers={"Retry-After": "5"})
    return context.engine


@router.get("/v1/policy")
async def get_policy(context: Annotated[ApiContext, Depends(get_context)]) -> dict[str, Any]:
    engine = _engine(context)
    if isinstance(engine, DescribesItself):
        return engine.status().as_dict()
    return {"engine": type(engine).__name__, "version": engine.version}


@router.post("/v1/policy/evaluate")
async def evaluate(
    request: Request,
    context: Annotated[ApiContext, Depends(get_context)],
    *,
    explain: Annotated[bool, Query(description="add per-step notes and evaluated lines")] = False,
) -> dict[str, Any]:
    """Dry run. Body: a policy input, `{"findings": [...], "incident_id"?, "automation_paused"?,
    "active_containments"?}`, one OCSF finding, or a list of findings."""
    engine = _engine(context)
    raw = await request.body()
    if len(raw) > context.settings.max_body_bytes:
        raise Problem(413, f"body over {context.settings.max_body_bytes} bytes")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, f"body is not JSON: {exc}", slug="malformed-json") from None
    # The served version's own inventory, so a dry run enriches as a real decision would.
    inventory = (
        engine.inventory()
        if isinstance(engine, EmbeddedEngine)
        else Inventory.load(context.settings.policy_dir)
    )
    try:
        policy_input = policy_input_from(document, inventory)
    except DryRunError as exc:
        raise Problem(422, str(exc), slug="invalid-request", errors=exc.errors) from None
    decision = engine.decide(policy_input)
    body: dict[str, Any] = {
        "decision": decision.model_dump(mode="json"),
        "input": policy_input,
        "dry_run": True,
    }
    if explain and isinstance(engine, EmbeddedEngine):
        body["explain"] = explain_decision(engine.bundle, policy_input).as_dict()
    return body
