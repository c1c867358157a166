"""What wakes IncidentWorkflow on its own: approval deadlines and lease expiries.

The run loop sleeps until the earliest of these (or a drift check, workflows/drift.py)
and then settles what is due: an unanswered gate follows its policy's `on_timeout`, an
expired lease is rolled back. Workflow code: deterministic (workflow.now() only).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.decision import OnTimeout
    from contracts.incident import StepState, StepView
    from workflows import gates
    from workflows.drift import DriftChecks
    from workflows.execution import StepExecution


def next_timer(
    steps: Collection[StepView], drift: DriftChecks, export_by: datetime | None = None
) -> timedelta | None:
    """How long the loop may sleep before something is due (a gate, a lease, a drift
    check, waiting audit entries); None when nothing is."""
    deadlines = [
        datetime.fromisoformat(s.approval_deadline)
        for s in steps
        if s.state is StepState.AWAITING_APPROVAL and s.approval_deadline
    ] + [
        datetime.fromisoformat(s.lease_expires_at)
        for s in steps
        if s.state in gates.HOLDING and s.lease_expires_at and s.reversible
    ]
    deadlines += drift.deadlines(steps)
    if export_by is not None:
        deadlines.append(export_by)
    if not deadlines:
        return None
    return max(min(deadlines) - workflow.now(), timedelta(milliseconds=1))


def overdue(step: StepView) -> bool:
    """Still waiting for a person after its deadline passed and it was escalated."""
    return step.overdue_since is not None and step.state is StepState.AWAITING_APPROVAL


def expire_gates(
    steps: Collection[StepView], x: StepExecution, escalate: Callable[[str], None]
) -> None:
    """Gates nobody answered in time: denied, approved or escalated, as the policy said."""
    now = workflow.now()
    for step in steps:
        if step.state is not StepState.AWAITING_APPROVAL or step.approval_deadline is None:
            continue
        if datetime.fromisoformat(step.approval_deadline) > now:
            continue
        deadline, step.approval_deadline = step.approval_deadline, None
        outcome = OnTimeout(step.on_timeout)
        x.record("approval.timeout", step=step.id, on_timeout=outcome.value)
        if outcome is OnTimeout.DENY:
            x.transition(step, StepState.EXPIRED)
        elif outcome is OnTimeout.APPROVE:
            x.transition(step, StepState.APPROVED, by="policy on_timeout")
        else:
            step.overdue_since = deadline  # still waiting: marked overdue, escalated
            escalate(f"step {step.id}: nobody approved it in time")


async def expire_leases(steps: Collection[StepView], x: StepExecution) -> None:
    """Roll back every reversible held step whose lease has run out."""
    now = workflow.now()
    due = [
        s
        for s in steps
        if s.state in gates.HOLDING
        and s.reversible
        and s.lease_expires_at
        and datetime.fromisoformat(s.lease_expires_at) <= now
    ]
    for step in due:
        x.record("lease.expired", step=step.id)
        await x.roll_back(step)
