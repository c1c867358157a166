"""Continue-as-new for IncidentWorkflow: when a run hands over, and what it hands the next
run (IncidentCarry, inside the same IncidentParams).

A run hands over when Temporal suggests it or its history passes `max_history_events`;
the next run starts where this one stopped, with the list's values already set. Workflow
code: deterministic.
"""

from __future__ import annotations

from typing import NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.decision import Decision
    from contracts.incident import (
        IncidentCarry,
        IncidentParams,
        IncidentStatus,
        ReleaseRequest,
        StepView,
    )
    from contracts.visibility import findings_shown, visible
    from workflows.execution import StepExecution
    from workflows.grants import GrantGate
    from workflows.intake import Intake
    from workflows.visibility import attributes


def incident_id(key: str, sequence: int) -> str:
    """The entity's first incident is known by its key; later ones by key@n."""
    return key if sequence == 1 else f"{key}@{sequence}"


def history_full(max_history: int) -> bool:
    return workflow.info().get_current_history_length() > max_history


def due(*, released: bool, max_history: int) -> bool:
    """Whether this run should hand over (never once released: that run ends or rests)."""
    info = workflow.info()
    return not released and (
        info.is_continue_as_new_suggested() or info.get_current_history_length() > max_history
    )


def carry(
    intake: Intake,
    x: StepExecution,
    grants: GrantGate,
    *,
    decision: Decision | None,
    decisions: list[str],
    steps: list[StepView],
    escalations: list[str],
    failing: bool,
    release: ReleaseRequest | None,
    run: int,
    sequence: int,
    earlier: list[str],
    idle: bool,
) -> IncidentCarry:
    """This incident, exactly where the run stopped (unexported audit entries included)."""
    unclaimed, told = x.unclaimed.to_carry()
    return IncidentCarry(
        findings=intake.kept.items,
        findings_received=intake.received,
        seen=list(intake.seen),
        duplicates=intake.duplicates,
        decision=decision,
        decisions=decisions,
        steps=steps,
        escalations=escalations,
        failing=failing,
        audit_tail=x.audit_tail,
        audit_total=x.audit_total,
        exported_seq=x.exported_seq,
        picture=list(intake.picture),
        release_requested=release,
        run=run,
        sequence=sequence,
        earlier=earlier,
        idle=idle,
        used_grants=list(grants.used),
        unclaimed=unclaimed,
        unclaimed_told=told,
    )


def continue_as_new(
    carry: IncidentCarry,
    *,
    status: str,
    listed: bool,
    key: str,
    entity: str,
    max_history: int,
    drift_check_s: int,
) -> NoReturn:
    """Continue as new with the same incident and settings. When the run is `listed`
    (HISTORY_PATCH and VISIBILITY_PATCH), the next run starts with the list's values
    already set (the given status), so no row doubles or goes missing while it starts."""
    params = IncidentParams(
        incident_id=key,
        entity=entity,
        carry=carry,
        max_history_events=max_history,
        drift_check_s=drift_check_s,
    )
    if not listed:
        workflow.continue_as_new(params)
    shown = visible(
        status=IncidentStatus.OPEN,  # replaced by `status` below
        entity=entity,
        findings=findings_shown(carry.findings),
        received=carry.findings_received,
        decision=carry.decision,
        steps=carry.steps,
        incident_id=incident_id(key, carry.sequence),
    )
    workflow.continue_as_new(params, search_attributes=attributes(shown, status), memo=shown.memo())
