"""Who may do what: the approval policy in Rego (`data.bulkhead.approval.allow`), asked
with one input built in one place.

The service asks it before every action (`authorize`, which raises); the console asks it
ahead of time (`ask`, which does not) to show each button enabled or disabled, with
exactly the input the action will send. No role is tested in Python.
"""

from __future__ import annotations

import structlog

from contracts.incident import IncidentView, Principal, StepState, StepView
from orchestrator.policy.base import Authorization, PolicyEngine
from orchestrator.policy.models import AuthorizationInput
from orchestrator.responders.errors import Forbidden, NoPolicy

log = structlog.get_logger(__name__)


def zones(view: IncidentView) -> list[str]:
    return sorted({r.zone for f in view.findings for r in f.resources if r.zone})


def authorization_input(
    action: str,
    principal: Principal,
    view: IncidentView | None = None,
    step: StepView | None = None,
) -> AuthorizationInput:
    """The approval policy's input (see `Authorization`), the only place it is built."""
    return AuthorizationInput.model_validate(
        {
            "action": action,
            "principal": principal.model_dump(),
            "incident": None
            if view is None
            else {
                "incident_id": view.incident_id,
                "status": view.status.value,
                "zones": zones(view),
            },
            "step": None
            if step is None
            else {
                "id": step.id,
                "adapter": step.adapter,
                "action": step.action,
                "target": step.target,
                "reversible": step.reversible,
                "overdue": step.overdue_since is not None
                and step.state is StepState.AWAITING_APPROVAL,
                "approval": {
                    "required": step.required_approvals,
                    "roles": step.approval_roles,
                    "must_include_roles": step.must_include_roles,
                },
                # Four-eyes in the policy compares ids; the name is only for its reasons.
                "approvals": [
                    {"principal": a.principal, "principal_id": a.principal_id, "roles": a.roles}
                    for a in step.approvals
                ],
            },
        }
    )


def ask(
    engine: PolicyEngine,
    action: str,
    principal: Principal,
    view: IncidentView | None = None,
    step: StepView | None = None,
) -> Authorization:
    """The policy's answer, without acting on it (engines never raise: they deny)."""
    return engine.authorize(authorization_input(action, principal, view, step))


def why_not(verdict: Authorization) -> str:
    return "; ".join(verdict.reasons) or "the approval policy does not allow it"


def authorize(
    engine: PolicyEngine | None,
    action: str,
    principal: Principal,
    view: IncidentView | None = None,
    step: StepView | None = None,
) -> Authorization:
    """The policy's yes, logged; NoPolicy without a policy, Forbidden with its reasons
    when it says no (or cannot say)."""
    if engine is None:
        raise NoPolicy("no policy is loaded, so no action can be authorized")
    verdict = ask(engine, action, principal, view, step)
    log.info(
        "authz",
        action=action,
        principal=principal.name,
        allow=verdict.allow,
        decision_id=verdict.decision_id,
        incident_id=view.incident_id if view else None,
    )
    if not verdict.allow:
        raise Forbidden(
            f"{principal.name} may not {action}: {why_not(verdict)}",
            reasons=list(verdict.reasons),
            decision_id=verdict.decision_id,
        )
    return verdict
