"""Deciding inside IncidentWorkflow: ask the policy (the `decide` local activity), then
merge the decision's plan into the incident's steps and preview what waits for approval.

The workflow keeps the decision itself (and its id); this module records it in the audit
and turns each new planned step into a StepView. Workflow code: deterministic, activities
called by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.adapter import Plan
    from contracts.decision import DecideRequest, Decision, DecisionStep
    from contracts.findings import Finding
    from contracts.incident import StepState, StepView
    from contracts.names import Activity
    from workflows.changing import STEP_CALL_TIMEOUT, STEP_FAILURES, error_text
    from workflows.execution import PREVIEW_RETRY, StepExecution

DEFAULT_LEASE_S = 3600  # a reversible change never stays without a lease
DECIDE_TIMEOUT = timedelta(seconds=10)
PREVIEW_PATCH = "preview-plans"  # histories from before previews replay without them
# A decision's steps reach the incident list before its dry runs and applies, which may
# retry against a slow target for minutes: before this, a step waiting for a person was
# missing from the list (and the approvals count) all that time.
LIST_EARLY_PATCH = "list-before-previews"


async def decide(incident_id: str, findings: list[Finding]) -> Decision:
    """The policy's decision on the findings kept (a local activity, so it is recorded)."""
    request = DecideRequest(incident_id=incident_id, findings=findings)
    decision: Decision = await workflow.execute_local_activity(
        Activity.DECIDE,
        request,
        result_type=Decision,
        start_to_close_timeout=DECIDE_TIMEOUT,
    )
    return decision


async def plan(
    decision: Decision,
    steps: dict[str, StepView],
    x: StepExecution,
    *,
    previews: bool,
    listed: Callable[[], None] | None = None,
) -> None:
    """Audit the decision and add its new steps to `steps` (in the decision's order);
    `listed` publishes a step that waits for a person to the incident list before any
    slow call (LIST_EARLY_PATCH). An automatic step adds no visibility write on the
    path to containment: it is listed once it ran."""
    x.record(
        "decision",
        verdict=decision.verdict.value,
        reasons=decision.reasons,
        policy_version=decision.policy_version,
        decision_id=decision.decision_id,
        input_digest=decision.input_digest,
        steps=[s.id for s in decision.steps],
    )
    now = workflow.now()
    # Plan merge by step id: a step already known keeps its state, approvals and receipt.
    waiting: list[StepView] = []
    for planned in decision.steps:
        if planned.id in steps:
            continue
        gate = planned.approval
        waits = gate.required > 0
        step = _step_of(planned, now, waits=waits)
        steps[step.id] = step
        x.record(
            "step.planned",
            step=step.id,
            awaiting_approval=waits,
            required_approvals=gate.required,
            reversible=planned.reversible,
        )
        if waits:
            waiting.append(step)
    if listed is not None and waiting:  # automatic steps are listed once they ran
        listed()
    # Approvers see what a step would change before they decide: a dry-run plan of
    # each step that waits for them (the plan that counts is made again at apply).
    if waiting and previews:
        await asyncio.gather(*(preview(x, step) for step in waiting))


async def preview(x: StepExecution, step: StepView) -> None:
    """A dry-run plan for a step awaiting approval: no side effect on the target.

    Runs with PREVIEW_IN_TASK_PATCH dry-run in a local activity, in the workflow task
    that decided: a task attempt later discarded changed nothing by running it, and a
    waiting incident is spared an activity and a workflow task on the server (about a
    third of what opening one cost it: bench/scale.py, docs/PERFORMANCE.md)."""
    run = workflow.execute_local_activity if x.previews_in_task else workflow.execute_activity
    try:
        plan: Plan = await run(
            Activity.PLAN,
            x.command_of(step),
            result_type=Plan,
            start_to_close_timeout=STEP_CALL_TIMEOUT,
            retry_policy=PREVIEW_RETRY,
        )
    except STEP_FAILURES as exc:
        x.record("step.preview_failed", step=step.id, error=error_text(exc))
        return
    step.preview = plan
    x.record(
        "step.preview",
        step=step.id,
        summary=plan.summary,
        changes=plan.changes,
        before=plan.before,
        after=plan.after,
    )


def _step_of(planned: DecisionStep, now: datetime, *, waits: bool) -> StepView:
    """A new step as the incident tracks it: gated (with a deadline) or ready to run."""
    gate = planned.approval
    return StepView(
        id=planned.id,
        adapter=planned.adapter,
        action=planned.action,
        target=planned.target,
        args=planned.args,
        reversible=planned.reversible,
        automatic=not waits,
        required_approvals=gate.required,
        approval_roles=gate.roles,
        must_include_roles=gate.must_include_roles,
        on_timeout=gate.on_timeout.value,
        approval_deadline=(now + timedelta(seconds=gate.timeout_s)).isoformat() if waits else None,
        lease_s=planned.lease_s or (DEFAULT_LEASE_S if planned.reversible else None),
        guard=planned.guard.essential,
        drift=planned.drift,
        state=StepState.AWAITING_APPROVAL if waits else StepState.PLANNED,
    )
