"""The seam between Bulkhead and a Rego engine."""

from __future__ import annotations

from typing import Any, Protocol

from workflows.model import Decision, Verdict

ENTRYPOINT = "data.bulkhead.containment.decision"


class PolicyEngine(Protocol):
    @property
    def version(self) -> str: ...

    def decide(self, policy_input: dict[str, Any]) -> Decision: ...


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
