"""Seams for workflow tests: a policy engine that returns the decision a test needs.

The steps still run through the real Modbus adapter against the lab controllers; only the
Rego evaluation is replaced, because these tests are about the workflow, not the policy
(the policy has its own suite in tests/policies).
"""

from __future__ import annotations

import uuid
from typing import Any

from harness import example_finding
from temporalio.client import Client

from contracts.adapter import Capabilities, Plan, Receipt, StepCommand, Verification
from contracts.decision import Decision, DecisionStep, Verdict
from contracts.findings import Finding, FindingEnvelope
from contracts.incident import GuardReport, IncidentParams, ServiceHealth
from orchestrator.activities import ContainmentActivities
from orchestrator.config import Settings
from orchestrator.policy.base import Authorization, AuthorizationRequest
from orchestrator.policy.models import ContainmentInput
from orchestrator.policy.status import PolicyStatus
from orchestrator.temporal.city import CityState
from orchestrator.temporal.incidents import IncidentClient
from orchestrator.wiring.adapters import build_adapters
from orchestrator.wiring.inventory import Inventory


class ScriptedEngine:
    """Returns `steps` as a `contain` decision for every input; allows every action."""

    version = "sha256:scripted"
    bundle = None  # nothing evaluated in this process (a dry run on it runs on a thread)

    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.steps = [DecisionStep.model_validate(s) for s in steps]
        self.inputs: list[dict[str, Any]] = []  # each input's document, as a policy sees it

    def inventory(self) -> None:
        return None  # the activities enrich with the inventory they were built with

    def status(self) -> PolicyStatus:
        return PolicyStatus(engine="scripted", version=self.version, source="-", loaded_at=None)

    def explain(self, policy_input: ContainmentInput) -> None:
        return None

    def watcher(self, *, interval_s: float) -> None:
        return None

    def decide(self, policy_input: ContainmentInput) -> Decision:
        self.inputs.append(policy_input.document())
        return Decision(
            verdict=Verdict.CONTAIN,
            reasons=["scripted"],
            steps=self.steps,
            policy_version=self.version,
            decision_id=str(uuid.uuid4()),
        )

    def authorize(self, request: AuthorizationRequest) -> Authorization:
        return Authorization(allow=True, decision_id=str(uuid.uuid4()), policy_version=self.version)


class FakeModbusAdapter:
    """An adapter whose every answer a test can override: it records rollbacks, applies
    and verifies cleanly. For what the lab cannot do on demand (fail, drift)."""

    name = "modbus"

    def __init__(self) -> None:
        self.rollbacks: list[Receipt] = []

    async def plan(self, command: StepCommand) -> Plan:
        return Plan(adapter=self.name, summary="set", before={"value": 0}, after={"value": 1})

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        return Receipt(
            adapter=self.name,
            key=key,
            target=command.target,
            action=command.action,
            applied=True,
            after={"value": 1},
        )

    async def verify(self, receipt: Receipt) -> Verification:
        return Verification(ok=True, observed={"value": 1})

    async def rollback(self, receipt: Receipt) -> Receipt:
        self.rollbacks.append(receipt)
        return receipt.model_copy(update={"applied": False})

    async def capabilities(self) -> Capabilities:
        return Capabilities(adapter=self.name, usable=True, actions=["set"])


class SharedDependency:
    """A dispatch service whose health an adapter can break, like a real shared link."""

    def __init__(
        self, *, healthy: bool = True, breaks_on_apply: bool, settle_s: float = 0.0
    ) -> None:
        self.healthy = healthy
        self.breaks_on_apply = breaks_on_apply
        self.settle_s = settle_s  # the workflow waits this long before probing again
        self.checks: list[tuple[list[str], bool]] = []

    async def check(self, services: list[str], *, settle: bool) -> GuardReport:
        self.checks.append((services, settle))
        return GuardReport(
            services={
                name: ServiceHealth(healthy=self.healthy, detail="ok" if self.healthy else "503")
                for name in services
            }
        )


class CouplingAdapter(FakeModbusAdapter):
    """Applying breaks the shared dependency (when it is set to); rolling back heals it."""

    def __init__(self, dependency: SharedDependency) -> None:
        super().__init__()
        self.dependency = dependency

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        if self.dependency.breaks_on_apply:
            self.dependency.healthy = False
        return await super().apply(command, key=key)

    async def rollback(self, receipt: Receipt) -> Receipt:
        self.dependency.healthy = True
        return await super().rollback(receipt)


def guarded_activities(
    settings: Settings, dependency: SharedDependency
) -> tuple[ContainmentActivities, CouplingAdapter]:
    """One step on tsc-0001 whose zone's essential service is `dependency`, its guard."""
    adapter = CouplingAdapter(dependency)
    engine = ScriptedEngine(
        [fallback_step("tsc-0001", guard={"essential": ["emergency-dispatch"]})]
    )
    inventory = Inventory.load(settings.policy_dir)
    activities = ContainmentActivities(engine, inventory, {"modbus": adapter}, guard=dependency)
    return activities, adapter


def fallback_step(asset: str, **changes: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "id": f"fallback:{asset}",
        "adapter": "modbus",
        "action": "set",
        "target": {"asset": asset},
        "args": {"mode": "flash"},
        "approval": {"required": 0},
        "lease_s": 3600,
        "reversible": True,
    }
    step.update(changes)
    return step


def scripted_activities(
    settings: Settings, engine: ScriptedEngine, city: CityState | None = None
) -> ContainmentActivities:
    inventory = Inventory.load(settings.policy_dir)
    return ContainmentActivities(engine, inventory, build_adapters(settings, inventory), city=city)


def new_incident(**params: Any) -> IncidentParams:
    entity = f"entity-{uuid.uuid4().hex[:8]}"
    return IncidentParams(incident_id=f"inc-{entity}", entity=entity, **params)


def finding(uid: str | None = None, **changes: Any) -> Finding:
    document = example_finding(**changes)
    document["finding_info"] = {"uid": uid or f"det-{uuid.uuid4().hex}", "title": "test"}
    return Finding.model_validate(document)


async def send(
    client: Client,
    settings: Settings,
    params: IncidentParams,
    found: Finding | None = None,
    webhook_id: str | None = None,
) -> None:
    envelope = FindingEnvelope(
        finding=found or finding(), source="generic", webhook_id=webhook_id, received_at_ms=0
    )
    await IncidentClient(client).deliver(settings, params, envelope)


async def send_many(
    client: Client, settings: Settings, params: IncidentParams, found: list[Finding]
) -> None:
    """Several findings in one signal-with-start, as the API's coalescer sends them."""
    envelopes = [
        FindingEnvelope(finding=f, source="generic", webhook_id=None, received_at_ms=0)
        for f in found
    ]
    await IncidentClient(client).deliver_many(settings, params, envelopes)
