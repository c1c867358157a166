"""The seam between Bulkhead and a Rego engine.

Callers hold a `PolicyEngine` and nothing more: everything they need of an engine (what
it serves, its inventory, explanations, hot reload) is on the protocol, so no caller asks
which engine it has.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from contracts.decision import Decision, Verdict
from orchestrator.policy.models import AuthorizationInput, ContainmentInput

if TYPE_CHECKING:
    from orchestrator.policy.bundle import PolicyBundle
    from orchestrator.policy.explain import Explanation
    from orchestrator.policy.status import PolicyStatus
    from orchestrator.wiring.inventory import Inventory

ENTRYPOINT = "data.bulkhead.containment.decision"
AUTHZ_ENTRYPOINT = "data.bulkhead.approval.allow"
AUTHZ_REASONS = "data.bulkhead.approval.reasons"
# Which channel tags hear of an event (orchestrator/notify/; policies/bulkhead/notify/).
NOTIFY_ENTRYPOINT = "data.bulkhead.notify.tags"

# What `authorize` takes; built in one place (orchestrator.responders.authorization). The
# engines still check whatever they are handed against the model before Rego sees it.
AuthorizationRequest = AuthorizationInput


@dataclass(frozen=True)
class Authorization:
    """The approval policy's answer for one principal and one action.

    Input of `data.bulkhead.approval.allow`: an AuthorizationInput,
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

    @property
    def bundle(self) -> PolicyBundle | None:
        """The policy this engine evaluates in this process, which a worker process can
        compile again (dry runs); None when a server evaluates it (OPA)."""
        ...

    def inventory(self) -> Inventory | None:
        """The inventory the policy decides with (it moves with a hot reload); None when
        the engine does not hold it, and callers enrich with the one they loaded."""
        ...

    def status(self) -> PolicyStatus:
        """What it serves, for `GET /v1/policy`."""
        ...

    def decide(self, policy_input: ContainmentInput) -> Decision:
        """Evaluate `ENTRYPOINT`; never raises: any failure is an escalation."""
        ...

    def authorize(self, request: AuthorizationRequest) -> Authorization:
        """Evaluate `AUTHZ_ENTRYPOINT` (and `AUTHZ_REASONS`) for one request; never raises."""
        ...

    def notify(self, event: dict[str, Any]) -> list[str] | None:
        """Evaluate `NOTIFY_ENTRYPOINT` for `{"event": event}`: the channel tags to tell;
        None when the policy could not answer (the notifier then tells every channel:
        a page twice beats none)."""
        ...

    def explain(self, policy_input: ContainmentInput) -> Explanation | None:
        """Why the decision for this input is what it is; None where the engine cannot
        say (OPA evaluates remotely, without coverage)."""
        ...

    def watcher(self, *, interval_s: float) -> Awaitable[None] | None:
        """A long-running part that serves each checked change of the policy directory;
        None when the engine does not reload (OPA is given its policies by its own
        deployment). Not started until awaited."""
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


def tags_from(result: Any) -> list[str] | None:
    """The notify policy's answer (a set, as a JSON array) as sorted tags; None when it is
    not a list of strings (an undefined rule is an empty set: nobody is told)."""
    if result is None:
        return []
    if not isinstance(result, list) or not all(isinstance(t, str) for t in result):
        return None
    return sorted(set(result))
