"""Incident status as a pure function of the decision and step states."""

from __future__ import annotations

from contracts.decision import Decision
from contracts.incident import IncidentStatus, StepState, StepView

_IN_FLIGHT = {StepState.APPROVED, StepState.APPLYING, StepState.ROLLING_BACK, StepState.PLANNED}
_HOLDING = {StepState.APPLIED, StepState.VERIFIED}


def derive_status(
    decision: Decision | None,
    steps: list[StepView],
    *,
    failed: bool = False,
    escalated: bool = False,
    released: bool = False,
    closed: bool = False,
) -> IncidentStatus:
    """Worst state wins: a failure outranks an escalation, which outranks waiting, which
    outranks work in flight."""
    states = {step.state for step in steps}
    if failed or StepState.FAILED in states:
        return IncidentStatus.FAILED
    if released:
        return IncidentStatus.RELEASED
    if escalated:  # nobody approved in time: a person must decide, late
        return IncidentStatus.ESCALATED
    if StepState.AWAITING_APPROVAL in states:
        return IncidentStatus.AWAITING_APPROVAL
    if states & _IN_FLIGHT:
        return IncidentStatus.CONTAINING
    if states & _HOLDING:
        return IncidentStatus.CONTAINED
    if closed:  # the SIEM closed every finding, and nothing holds or waits
        return IncidentStatus.CLOSED
    if decision is not None and states and states <= {StepState.ROLLED_BACK, StepState.EXPIRED}:
        return IncidentStatus.RELEASED
    return IncidentStatus.OPEN
