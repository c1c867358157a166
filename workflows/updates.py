"""What IncidentWorkflow's updates do to a step (approve, deny, extend), and the checks
they share: the refusal every validator raises, and the earlier-incident rule.

The handlers and validators themselves stay on the workflow (workflows/incident.py);
each is admitted there (grant check) and then calls one of these. Workflow code:
deterministic, the target's renewal a regular activity called by name.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.adapter import Receipt
    from contracts.incident import (
        ApprovalRecord,
        ApproveRequest,
        DenyRequest,
        ExtendRequest,
        ReleaseRequest,
        RenewLeaseRequest,
        StepState,
        StepView,
    )
    from contracts.names import Activity, ErrorType
    from workflows import gates
    from workflows.changing import ADAPTER_RETRY, STEP_CALL_TIMEOUT, STEP_FAILURES
    from workflows.execution import StepExecution

RENEW_PATCH = "renew-lease-on-target"  # older extends moved only the workflow's lease


def refuse_if(reason: str | None) -> None:
    if reason is not None:
        # The update is rejected before it reaches history; the API answers 409.
        raise ApplicationError(reason, type=ErrorType.REFUSED, non_retryable=True)


def other_incident(requested: str | None, current: str) -> str | None:
    """Why an action naming another incident of this entity is refused (None if it names
    this one, or none)."""
    if requested is None or requested == current:
        return None
    return (
        f"{requested} is not this entity's current incident ({current}); "
        "an earlier incident takes no actions"
    )


def record_of(request: ApproveRequest | DenyRequest | ReleaseRequest) -> ApprovalRecord:
    return ApprovalRecord(
        principal=request.principal.name,
        principal_id=request.principal.id,
        roles=request.principal.roles,
        reason=request.reason,
        at=workflow.now().isoformat(),
        decision_id=request.authz_decision_id,
    )


def approve(step: StepView, request: ApproveRequest, x: StepExecution) -> StepView:
    """One approval; the last one needed moves the step on to run."""
    step.approvals.append(record_of(request))
    x.record(
        "step.approval",
        step=step.id,
        principal=request.principal.name,
        principal_id=request.principal.id,
        reason=request.reason,
        authz_decision_id=request.authz_decision_id,
    )
    if gates.approvals_complete(step):
        step.approval_deadline = None
        x.transition(step, StepState.APPROVED)
    return step


def deny(step: StepView, request: DenyRequest, x: StepExecution) -> StepView:
    step.denial = record_of(request)
    step.approval_deadline = None
    x.transition(
        step,
        StepState.DENIED,
        principal=request.principal.name,
        principal_id=request.principal.id,
        reason=request.reason,
    )
    return step


async def extend(
    step: StepView, request: ExtendRequest, x: StepExecution, *, renews: bool
) -> StepView:
    """Move the step's lease; with `renews` (RENEW_PATCH), the target's deadline too."""
    if step.lease_expires_at is None:  # the validator refuses this; kept for the types
        raise ApplicationError(f"step {step.id} holds no lease", type=ErrorType.REFUSED)
    before = step.lease_expires_at
    expires = datetime.fromisoformat(before) + timedelta(seconds=request.lease_s)
    step.lease_expires_at = expires.isoformat()
    if renews and step.receipt is not None:
        await _renew_on_target(step, before, request, x)
    x.record(
        "lease.extended",
        step=step.id,
        principal=request.principal.name,
        principal_id=request.principal.id,
        lease_expires_at=step.lease_expires_at,
        reason=request.reason,
    )
    return step


async def _renew_on_target(
    step: StepView, before: str, request: ExtendRequest, x: StepExecution
) -> None:
    """Move the target's own deadline (a dead-man's switch) with the lease, or keep
    the old lease: a console that shows a step held while the target lets go at the
    old time is worse than a refused extension."""
    if step.receipt is None or step.lease_expires_at is None:
        return
    renewal = RenewLeaseRequest(receipt=step.receipt, expires_at=step.lease_expires_at)
    try:
        step.receipt = await workflow.execute_activity(
            Activity.RENEW_LEASE,
            renewal,
            result_type=Receipt,
            start_to_close_timeout=STEP_CALL_TIMEOUT,
            retry_policy=ADAPTER_RETRY,
        )
    except STEP_FAILURES as exc:
        step.lease_expires_at = before
        error = str(exc.cause or exc) if isinstance(exc, ActivityError) else str(exc)
        x.record("lease.not_extended", step=step.id, principal=request.principal.name, error=error)
        raise ApplicationError(
            f"the target of step {step.id} did not take the new deadline ({error}); "
            f"the lease still ends at {before}",
            type=ErrorType.REFUSED,
        ) from None
