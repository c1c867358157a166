"""The seam between Bulkhead and a Rego engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from contracts.decision import Decision, Verdict

ENTRYPOINT = "data.bulkhead.containment.decision"
AUTHZ_ENTRYPOINT = "data.bulkhead.approval.allow"
AUTHZ_REASONS = "data.bulkhead.approval.reasons"


@dataclass(frozen=True)
class Authorization:
    """The approval policy's answer for one principal and one action.

    Input of `data.bulkhead.approval.allow`:
    `{"action": "approve"|"deny"|"extend"|"release"|"pause"|"resume",
      "principal": {"id", "name", "roles": [...]},  (id: local:<name> | oidc:<iss>#<sub>)
      "incident": {"incident_id", "status", "zones": [...]} | null,
      "step": {"id", "adapter", "action", "target", "approval": {...}, "reversible",
               "approvals": [{"principal", "principal_id", "roles"}] (the ones it has)}
               | null}`
    Anything but a literal `true` denies (fail closed). Schema:
    policies/schemas/authorization-input.schema.json; rules: policies/bulkhead/approval/.
    """

    allow: bool
    decision_id: str
    policy_version: str
    reasons: list[str] = field(default_factory=list)


class PolicyEngine(Protocol):
    @property
    def version(self) -> str: ...

    def decide(self, policy_input: dict[str, Any]) -> Decision: ...

    def authorize(self, request: dict[str, Any]) -> Authorization:
        """Evaluate `AUTHZ_ENTRYPOINT` (and `AUTHZ_REASONS`) for one request; never raises."""
        ...


def escalation(reason: str, *, policy_version: str, decision_id: str, digest: str) -> Decision:
    """The fail-closed decision: a human looks, nothing happens automatically."""
    return Decision(
        verdict=Verdict.ESCALATE,
        reasons=[reason],
        steps=[],
        policy_version=policy_version,
        decision_id=decision_id,
        input_digest=digest,
    )
