"""A release and what follows it: the saga that undoes the incident's steps, the rest of a
released incident, and the carry that opens the entity's next incident (key@n).

Runs from before HISTORY_PATCH completed at release, so the entity's next incident
reused the id and lost the link to this one; newer ones rest (idle) and number the next.
Workflow code: deterministic.
"""

from __future__ import annotations

from collections.abc import Collection

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.incident import (
        IncidentCarry,
        ReleaseRequest,
        ReleaseStepRequest,
        StepState,
        StepView,
    )
    from workflows import gates
    from workflows.carrying import history_full
    from workflows.execution import StepExecution
    from workflows.grants import GrantGate
    from workflows.intake import Intake
    from workflows.kept import KeptFindings
    from workflows.updates import record_of

HISTORY_PATCH = "incident-history"
MAX_EARLIER = 50  # earlier incident ids kept per entity (the audit keeps them all)


async def undo(steps: Collection[StepView], x: StepExecution, request: ReleaseRequest) -> None:
    """Saga: cancel open gates, then undo applied steps in reverse order of applying."""
    for step in steps:
        if step.state in (StepState.PLANNED, StepState.AWAITING_APPROVAL, StepState.APPROVED):
            step.denial = record_of(request)
            step.approval_deadline = None
            x.transition(step, StepState.DENIED, reason="incident released")
    holding = sorted(
        (s for s in steps if s.state in gates.HOLDING),
        key=lambda s: s.applied_seq or 0,
        reverse=True,
    )
    for step in holding:
        if step.reversible:
            await x.roll_back(step)
        else:
            x.record("release.irreversible", step=step.id)


def record_step_release(request: ReleaseStepRequest, x: StepExecution) -> None:
    x.record(
        "step.release_requested",
        step=request.step_id,
        principal=request.principal.name,
        principal_id=request.principal.id,
        reason=request.reason,
    )


async def undo_steps(
    requests: dict[str, ReleaseStepRequest], steps: dict[str, StepView], x: StepExecution
) -> None:
    """Undo each step released on its own (the update waits until its request is gone).
    A step that stopped holding meanwhile (its lease ran out first) has nothing left."""
    for step_id in list(requests):
        step = steps[step_id]
        if step.state in gates.HOLDING and step.reversible:
            await x.roll_back(step)
        del requests[step_id]


def quiet(x: StepExecution) -> bool:
    """Nothing a run may not end on: no update handler running, no guard watching."""
    return workflow.all_handlers_finished() and not x.watching()


async def settle(x: StepExecution) -> None:
    """Before a run ends: every update handler and guard watch done, every audit entry
    at the sink."""
    await workflow.wait_condition(lambda: quiet(x))
    await x.flush_audit()


async def rest(after_release: KeptFindings, x: StepExecution, max_history: int) -> None:
    """Wait, exporting the audit as it grows, until the entity's next finding comes (it
    lands in `after_release`) or the history is full."""

    def full() -> bool:
        return history_full(max_history)

    def wakes() -> bool:
        return bool(after_release.items) or x.export_due() or full()

    while not (after_release.items or full()):
        await workflow.wait_condition(wakes)
        if x.export_due():
            x.start_export()


def next_incident(
    intake: Intake,
    x: StepExecution,
    grants: GrantGate,
    *,
    run: int,
    sequence: int,
    earlier: list[str],
    current: str,
    bounded: bool,
) -> IncidentCarry:
    """The carry of the entity's next incident: the findings that came after the release,
    in the same audit chain, linked to this one (`current`) through `earlier`."""
    intake.restart_picture(bounded=bounded)
    return IncidentCarry(
        findings=intake.after_release.items,
        findings_received=len(intake.after_release.items),
        seen=list(intake.seen),
        duplicates=0,
        decision=None,
        decisions=[],
        steps=[],
        escalations=[],
        audit_tail=[],
        audit_total=x.audit_total,
        exported_seq=x.exported_seq,
        picture=list(intake.picture),
        run=run,
        sequence=sequence + 1,
        earlier=[*earlier, current][-MAX_EARLIER:],
        fresh=True,
        used_grants=list(grants.used),
    )
