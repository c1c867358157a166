"""`GET /v1/policy` (what serves, and the last rejected change) and the dry run
`POST /v1/policy/evaluate` (a decision for findings or an input; nothing is contained).

A dry run parses, validates and evaluates up to a megabyte of caller-supplied JSON: on
the event loop, 24 of them at once froze the whole API (webhooks and /healthz included)
for seconds. So it runs on a small pool of its own threads, with a bounded queue (503
beyond it). The embedded engine compiles one regorus engine per thread and never hands
one to another thread (orchestrator.policy.embedded), so its pool threads are safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request

from orchestrator.api.access import BEARER, Reader
from orchestrator.api.body import check_media_type, loads, read_limited
from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.problems import RETRY_AFTER_S, Problem
from orchestrator.inventory import Inventory
from orchestrator.policy.base import PolicyEngine
from orchestrator.policy.dryrun import DryRunError, policy_input_from
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.explain import explain as explain_decision
from orchestrator.policy.status import DescribesItself

router = APIRouter()
T = TypeVar("T")
QUEUED_PER_THREAD = 8  # dry runs that may wait for a thread before callers get 503


class DryRuns:
    """The dry-run threads and the admission count that keeps their queue short."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="policy-dry-run")
        self._admitted = 0

    async def run(self, work: Callable[[], T]) -> T:
        if self._admitted >= self.threads * (1 + QUEUED_PER_THREAD):
            raise Problem(
                503,
                "too many policy dry runs in progress; retry shortly",
                slug="busy",
                headers={"Retry-After": RETRY_AFTER_S},
            )
        self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            self._admitted -= 1


def _engine(context: ApiContext) -> PolicyEngine:
    if context.engine is None:
        raise Problem(503, "no policy is loaded", slug="no-policy", headers={"Retry-After": "5"})
    return context.engine


def dry_runs_of(request: Request) -> DryRuns:
    state = request.app.state
    if getattr(state, "dry_runs", None) is None:
        state.dry_runs = DryRuns(state.context.settings.evaluate_concurrency)
    runs: DryRuns = state.dry_runs
    return runs


@router.get("/v1/policy", openapi_extra={"security": BEARER})
async def get_policy(
    _reader: Reader, context: Annotated[ApiContext, Depends(get_context)]
) -> dict[str, Any]:
    engine = _engine(context)
    if isinstance(engine, DescribesItself):
        return engine.status().as_dict()
    return {"engine": type(engine).__name__, "version": engine.version}


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
    "/v1/policy/evaluate", openapi_extra={"security": BEARER, "requestBody": EVALUATE_BODY}
)
async def evaluate(
    request: Request,
    _reader: Reader,
    context: Annotated[ApiContext, Depends(get_context)],
    runs: Annotated[DryRuns, Depends(dry_runs_of)],
    *,
    explain: Annotated[bool, Query(description="add per-step notes and evaluated lines")] = False,
) -> dict[str, Any]:
    """Dry run. Body: a policy input, `{"findings": [...], "incident_id"?, "automation_paused"?,
    "active_containments"?}`, one OCSF finding, or a list of findings."""
    engine = _engine(context)
    check_media_type(request)
    raw = await read_limited(request, context.settings.max_body_bytes)
    return await runs.run(partial(_dry_run, engine, context, raw, explain=explain))


def _dry_run(
    engine: PolicyEngine, context: ApiContext, raw: bytes, *, explain: bool
) -> dict[str, Any]:
    """Parse, validate and evaluate on a dry-run thread; a Problem for anything bad."""
    document = loads(raw)
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
    except (ValueError, TypeError, OverflowError) as exc:
        # A wrongly typed field the shapes above do not name (active_containments: "x").
        raise Problem(422, f"not a valid dry-run request: {exc}", slug="invalid-request") from None
    decision = engine.decide(policy_input)
    body: dict[str, Any] = {
        "decision": decision.model_dump(mode="json"),
        "input": policy_input,
        "dry_run": True,
    }
    if explain and isinstance(engine, EmbeddedEngine):
        body["explain"] = explain_decision(engine.bundle, policy_input).as_dict()
    return body
