"""Storm coalescing, continue-as-new, the city kill switch and ledger, the exported audit."""

from __future__ import annotations

import asyncio

from audit_trails import exported
from harness import make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import (
    ScriptedEngine,
    fallback_step,
    finding,
    new_incident,
    scripted_activities,
    send,
)

from contracts.city import AutomationChange
from contracts.incident import IncidentStatus, Principal, StepState
from orchestrator.audit.chain import chain_errors
from orchestrator.audit.sink import JsonlAuditSink
from orchestrator.lab.traffic import TrafficLab
from orchestrator.temporal.city import TemporalCity
from orchestrator.wiring.worker import AUDIT_FILE, build_activities

DORA = Principal(name="dora", roles=["duty-officer"])


async def test_storm_of_1000_findings_makes_one_incident_and_counts_duplicates(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0001")])
    params = new_incident()
    unique = [finding(uid=f"storm-{i}") for i in range(500)]
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        for batch in range(0, 1000, 100):
            await asyncio.gather(
                *(
                    send(
                        temporal_client,
                        settings,
                        params,
                        unique[i % 500],
                        webhook_id=f"wh-{i % 500}",
                    )
                    for i in range(batch, batch + 100)
                )
            )
        # Until the containment's workflow task has completed too: while a storm of direct
        # signals (no API coalescing them) buffers more than the server's batch limit (100)
        # behind it, the server fails that task to flush them, and it runs again after.
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: v.findings_received + v.duplicates == 1000 and bool(v.steps),
        )
    executions = [
        w async for w in temporal_client.list_workflows(f"WorkflowId = '{params.incident_id}'")
    ]
    assert len(executions) == 1
    assert view.findings_received == 500
    assert view.duplicates == 500
    # The same asset at the same severity is no news: one decision, one write.
    assert len(view.decisions) == 1
    assert traffic_lab.write_count(1) == 1


async def test_continue_as_new_keeps_state_leases_and_the_audit_chain(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0002")])
    params = new_incident(max_history_events=100)
    activities = scripted_activities(settings, engine)
    activities._audit_sink = JsonlAuditSink(settings.state_dir / AUDIT_FILE)
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        first = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
        for i in range(80):
            await send(temporal_client, settings, params, finding(uid=f"later-{i}"))
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: (
                v.run >= 2
                and v.findings_received == 81
                and len(exported(settings.state_dir, v.incident_id)) == v.audit_total
            ),
        )
    assert view.steps[0].state is StepState.VERIFIED
    assert view.steps[0].lease_expires_at == first.steps[0].lease_expires_at
    assert traffic_lab.write_count(2) == 1, "a new run never re-applies"
    mine = exported(settings.state_dir, params.incident_id)
    assert chain_errors(mine) == []
    assert [e.seq for e in mine] == list(range(1, view.audit_total + 1))


async def test_paused_automation_makes_every_step_wait_and_ledger_counts_containments(
    temporal_client: Client, traffic_lab: TrafficLab
):
    """Real policy, real city record: pause → approval needed; resume → automatic again."""
    settings = make_settings(traffic_lab.port)
    city = TemporalCity(temporal_client, settings)
    await city.ensure()
    activities = build_activities(settings, city)
    paused_incident, live_incident = new_incident(), new_incident()
    async with running_worker(temporal_client, settings, activities):
        await city.set_paused(AutomationChange(principal=DORA, reason="drill"), paused=True)
        await send(temporal_client, settings, paused_incident)
        waiting = await wait_for(
            temporal_client, paused_incident.incident_id, lambda v: v.decision is not None
        )
        await city.set_paused(AutomationChange(principal=DORA, reason="drill over"), paused=False)
        await send(temporal_client, settings, live_incident)
        await wait_for(
            temporal_client,
            live_incident.incident_id,
            lambda v: v.status is IncidentStatus.CONTAINED,
        )
        for _ in range(50):  # the ledger signal is sent right after verification
            snapshot = await city.snapshot()
            if snapshot.active_containments:
                break
            await asyncio.sleep(0.1)
        record = await city.view()
    assert waiting.status is IncidentStatus.AWAITING_APPROVAL
    assert waiting.steps[0].required_approvals >= 1
    assert not snapshot.paused
    assert snapshot.active_containments == 1
    assert record.changed_by == "dora"
    assert list(record.active) == [f"{live_incident.incident_id}:fallback:tsc-0001"]
