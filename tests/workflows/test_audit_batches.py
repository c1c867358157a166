"""Audit entries about findings go out in batches; containment's go out at once.

A storm used to cost an export activity (and the workflow task that follows it) per
finding. Now an entry that only says a finding arrived waits up to EXPORT_DELAY for
company, and the list's findings count is published with it; nothing is lost and the
chain stays whole. Entries about steps still go out at once: every containment test
that reads the exported trail right after a step (test_audit_writes, the e2e tests)
runs without waiting for the delay.
"""

from __future__ import annotations

import asyncio
import time

from audit_trails import exported
from harness import make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import (
    ScriptedEngine,
    finding,
    new_incident,
    scripted_activities,
    send,
    send_many,
)

from contracts.names import Activity
from orchestrator.audit.chain import chain_errors
from orchestrator.audit.sink import JsonlAuditSink
from orchestrator.lab.traffic import TrafficLab
from orchestrator.temporal.incidents import IncidentClient
from orchestrator.wiring.worker import AUDIT_FILE
from workflows.auditing import EXPORT_DELAY


async def exports_in_history(client: Client, workflow_id: str) -> int:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(
        1
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name
        == Activity.EXPORT_AUDIT
    )


async def listed_findings(client: Client, incident_id: str) -> int | None:
    async for listed in IncidentClient(client).runs(f"WorkflowId = '{incident_id}'"):
        if listed.published is not None:
            return listed.published.findings
    return None


async def test_findings_are_exported_in_batches_within_the_delay_and_listed_with_them(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    activities = scripted_activities(settings, ScriptedEngine([]))
    activities._audit_sink = JsonlAuditSink(settings.state_dir / AUDIT_FILE)
    params = new_incident()
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: len(exported(settings.state_dir, params.incident_id)) == v.audit_total,
        )
        before = await exports_in_history(temporal_client, params.incident_id)
        sent = time.monotonic()
        # Five findings in five signals, each seen by the workflow before the next is
        # sent (a workflow task each), then ten in one signal.
        for n in range(2, 7):
            await send(temporal_client, settings, params)
            await wait_for(
                temporal_client, params.incident_id, lambda v, n=n: v.findings_received == n
            )
        await send_many(temporal_client, settings, params, [finding() for _ in range(10)])
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: (
                v.findings_received == 16
                and len(exported(settings.state_dir, params.incident_id)) == v.audit_total
            ),
        )
        waited = time.monotonic() - sent
        for _ in range(50):  # visibility is eventually consistent
            if await listed_findings(temporal_client, params.incident_id) == 16:
                break
            await asyncio.sleep(0.1)
        listed = await listed_findings(temporal_client, params.incident_id)
        exports = await exports_in_history(temporal_client, params.incident_id) - before
    entries = exported(settings.state_dir, params.incident_id)
    assert [e.kind for e in entries].count("finding.received") == 16
    assert chain_errors(entries) == [] and [e.seq for e in entries] == list(
        range(1, view.audit_total + 1)
    )
    # Six workflow tasks' worth of findings went out together, by the timer: one export
    # (more only if a slow machine let the timer fire between the sends), where each
    # task used to export its own (six).
    assert 1 <= exports <= 3, exports
    assert waited < EXPORT_DELAY.total_seconds() + 10
    assert listed == 16, "the findings count reached the list with its audit entries"
