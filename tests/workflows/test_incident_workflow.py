"""IncidentWorkflow on the real dev server, with the real policy and the lab controllers."""

from __future__ import annotations

import uuid

from harness import example_finding, make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import FakeModbusAdapter

from contracts.adapter import Receipt, StepCommand, Verification
from contracts.decision import Verdict
from contracts.findings import Finding, FindingEnvelope
from contracts.incident import IncidentParams, IncidentStatus, StepState
from orchestrator.activities import ContainmentActivities
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, TrafficLab
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.temporal.incidents import IncidentClient
from orchestrator.wiring.adapters import build_adapters
from orchestrator.wiring.inventory import Inventory


def envelope(webhook_id: str | None = None, **changes: object) -> FindingEnvelope:
    finding = Finding.model_validate(example_finding(**changes))
    return FindingEnvelope(
        finding=finding, source="generic", webhook_id=webhook_id, received_at_ms=0
    )


def fresh_incident() -> IncidentParams:
    entity = f"tsc-0001-{uuid.uuid4().hex[:6]}"
    return IncidentParams(incident_id=f"inc-{entity}", entity=entity)


async def test_finding_switches_controller_to_flash_and_verifies(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    params = fresh_incident()
    async with running_worker(temporal_client, settings):
        await IncidentClient(temporal_client).deliver(settings, params, envelope("wh-1"))
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
    step = view.steps[0]
    assert step.id == "fallback:tsc-0001"
    assert step.state is StepState.VERIFIED
    assert step.rollback_intent == {"mode": "normal", "value": MODE_NORMAL}
    assert step.receipt is not None and step.receipt.after["value"] == MODE_FLASH
    assert step.lease_expires_at is not None
    assert view.decision is not None and view.decision.policy_version.startswith("sha256:")
    assert await traffic_lab.read_mode(1) == MODE_FLASH
    assert traffic_lab.write_count(1) == 1
    kinds = [entry.kind for entry in view.audit]
    assert kinds.index("step.intent") < kinds.index("step.applying") < kinds.index("step.verified")


async def test_duplicate_findings_are_counted_not_reprocessed(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    params = fresh_incident()
    async with running_worker(temporal_client, settings):
        await IncidentClient(temporal_client).deliver(settings, params, envelope("wh-1"))
        await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
        await IncidentClient(temporal_client).deliver(settings, params, envelope("wh-1"))
        await IncidentClient(temporal_client).deliver(settings, params, envelope("wh-2"))
        view = await wait_for(temporal_client, params.incident_id, lambda v: v.duplicates == 2)
    assert len(view.findings) == 1
    assert [e.kind for e in view.audit].count("decision") == 1
    assert traffic_lab.write_count(1) == 1


async def test_new_asset_adds_a_step_and_keeps_the_applied_one(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    params = fresh_incident()
    spread = example_finding(
        finding_info={"uid": "det-spread", "title": "Same actor now on tsc-0002"},
        resources=[{"uid": "tsc-0002"}],
    )
    async with running_worker(temporal_client, settings):
        await IncidentClient(temporal_client).deliver(settings, params, envelope())
        await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
        second = FindingEnvelope(
            finding=Finding.model_validate(spread), source="generic", received_at_ms=0
        )
        await IncidentClient(temporal_client).deliver(settings, params, second)
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: len(v.steps) == 2 and all(s.state is StepState.VERIFIED for s in v.steps),
        )
    assert [s.id for s in view.steps] == ["fallback:tsc-0001", "fallback:tsc-0002"]
    assert traffic_lab.write_count(1) == 1
    assert traffic_lab.write_count(2) == 1


async def test_policy_error_escalates_without_any_step(
    temporal_client: Client, traffic_lab: TrafficLab, tmp_path
):
    """A policy that errors at evaluation fails closed: escalate, nothing applied."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "inventory.json").write_text('{"assets": {}}')
    (tmp_path / "broken.rego").write_text(
        'package bulkhead.containment\n\ndecision := {"verdict": input.a / input.b}\n'
    )
    settings = make_settings(traffic_lab.port, policy_dir=tmp_path)
    inventory = Inventory.load(tmp_path)
    activities = ContainmentActivities(
        EmbeddedEngine(tmp_path), inventory, build_adapters(settings, inventory)
    )
    params = fresh_incident()
    async with running_worker(temporal_client, settings, activities):
        await IncidentClient(temporal_client).deliver(settings, params, envelope())
        view = await wait_for(temporal_client, params.incident_id, lambda v: v.decision is not None)
    assert view.decision is not None
    assert view.decision.verdict is Verdict.ESCALATE
    assert view.steps == []
    assert traffic_lab.write_count(1) == 0


class DriftingAdapter(FakeModbusAdapter):
    """A change that does not stick: the one thing the lab cannot do on demand."""

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        receipt = await super().apply(command, key=key)
        # The receipt's `before` is wrong on purpose: rollback must use the recorded intent.
        return receipt.model_copy(update={"before": {"value": 5}})

    async def verify(self, receipt: Receipt) -> Verification:
        restored = not receipt.applied
        return Verification(ok=restored, observed={"value": 0 if restored else 7})


async def test_failed_verification_rolls_back_to_recorded_intent_and_fails_incident(
    temporal_client: Client,
):
    settings = make_settings(lab_port=1)  # the fake adapter never dials the lab
    adapter = DriftingAdapter()
    inventory = Inventory.load(settings.policy_dir)
    activities = ContainmentActivities(
        EmbeddedEngine(settings.policy_dir), inventory, {"modbus": adapter}
    )
    params = fresh_incident()
    async with running_worker(temporal_client, settings, activities):
        await IncidentClient(temporal_client).deliver(settings, params, envelope())
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: any(s.state is StepState.ROLLED_BACK for s in v.steps),
        )
    assert adapter.rollbacks[0].before == {"value": 0}, "rollback uses the intent, not the receipt"
    kinds = [e.kind for e in view.audit]
    assert "step.failed" in kinds
    assert view.steps[0].error is not None
    assert "verification failed" in view.steps[0].error
    assert view.status is IncidentStatus.FAILED
    assert view.escalated
