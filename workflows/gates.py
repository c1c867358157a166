"""Approval gates: who may approve what, checked before a workflow update is accepted.

Pure functions of the step and the request, so the validators stay deterministic and the
rules are testable without a server. Each returns the reason to refuse, or None.
"""

from __future__ import annotations

from collections.abc import Collection

from contracts.incident import (
    ApproveRequest,
    DenyRequest,
    ExtendRequest,
    ReleaseStepRequest,
    StepState,
    StepView,
)

HOLDING = (StepState.APPLIED, StepState.VERIFIED)


def approval_refusal(step: StepView | None, request: ApproveRequest) -> str | None:
    if step is None:
        return f"no step {request.step_id!r} in this incident"
    if step.state is not StepState.AWAITING_APPROVAL:
        return f"step {step.id} is {step.state.value}, not awaiting approval"
    # Ids, never display names: one IdP subject may show under several names, and two
    # people may share one.
    who = request.principal
    if who.id == step.requested_by_id:
        return f"{who.name} requested step {step.id} and cannot also approve it (four-eyes)"
    if any(a.principal_id == who.id for a in step.approvals):
        return f"{who.name} already approved step {step.id}; another principal must (four-eyes)"
    roles = set(request.principal.roles)
    if step.approval_roles and not roles & set(step.approval_roles):
        return f"step {step.id} needs an approver with one of the roles {step.approval_roles}"
    if len(step.approvals) + 1 >= step.required_approvals:
        held = roles.union(*(set(a.roles) for a in step.approvals))
        missing = [r for r in step.must_include_roles if r not in held]
        if missing:
            return (
                f"the last approval of step {step.id} must come from a principal with role(s) "
                f"{missing}"
            )
    return None


def denial_refusal(step: StepView | None, request: DenyRequest) -> str | None:
    if step is None:
        return f"no step {request.step_id!r} in this incident"
    if step.state not in (StepState.AWAITING_APPROVAL, StepState.APPROVED):
        return f"step {step.id} is {step.state.value}; only a step not yet applied can be denied"
    return None


def extension_refusal(step: StepView | None, request: ExtendRequest) -> str | None:
    if step is None:
        return f"no step {request.step_id!r} in this incident"
    if step.state not in HOLDING or step.lease_expires_at is None:
        return f"step {step.id} is {step.state.value} and holds no lease to extend"
    return None


def step_release_refusal(
    step: StepView | None,
    request: ReleaseStepRequest,
    pending: Collection[str],
    *,
    releasing: bool,
) -> str | None:
    """Why one step cannot be released on its own (None when it can): only a step that
    holds its target, can be undone, and is not already on its way back."""
    if step is None:
        return f"no step {request.step_id!r} in this incident"
    if releasing:
        return "this incident is already being released"
    if step.id in pending:
        return f"step {step.id} is already being released"
    if step.state not in HOLDING:
        if step.state in (StepState.AWAITING_APPROVAL, StepState.APPROVED):
            return f"step {step.id} is {step.state.value} and holds nothing yet: deny it instead"
        return f"step {step.id} is {step.state.value} and holds nothing to release"
    if not step.reversible:
        return f"step {step.id} cannot be undone (irreversible); it stays as applied"
    return None


def approvals_complete(step: StepView) -> bool:
    return len(step.approvals) >= max(step.required_approvals, 1)
