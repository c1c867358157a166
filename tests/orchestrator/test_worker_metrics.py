"""Worker metrics come from the sealed audit trail and the adapter calls: one contained
incident shows up as one finding, one `contain` decision, one verified step, one
time-to-contain sample and timed Modbus calls; a re-exported batch counts nothing twice."""

from __future__ import annotations

from harness import make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import new_incident, send

from contracts.incident import AuditEntry, IncidentStatus
from orchestrator.audit.metrics import WorkerMetrics
from orchestrator.audit.sink import JsonlAuditSink, read_entries
from orchestrator.lab.traffic import TrafficLab
from orchestrator.wiring.worker import AUDIT_FILE, build_activities


def value(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return found or 0.0


async def test_a_contained_incident_is_counted_once(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    activities = build_activities(settings)
    metrics = activities.metrics
    params = new_incident()
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: value(metrics, "bulkhead_step_transitions_total", state="verified") >= 1,
        )
    assert value(metrics, "bulkhead_findings_total") == 1
    assert value(metrics, "bulkhead_decisions_total", verdict="contain") == 1
    assert value(metrics, "bulkhead_time_to_contain_seconds_count") == 1
    assert 0 < value(metrics, "bulkhead_time_to_contain_seconds_sum") < 10
    apply_calls = value(
        metrics,
        "bulkhead_adapter_call_seconds_count",
        adapter="modbus",
        operation="apply",
        outcome="ok",
    )
    assert apply_calls == 1
    # The same entries exported again (a retried export) are not counted again.
    sealed = [
        e for _, e in read_entries(settings.state_dir / AUDIT_FILE) if isinstance(e, AuditEntry)
    ]
    again = JsonlAuditSink(settings.state_dir / AUDIT_FILE, on_sealed=metrics.observe_audit)
    again.write([e.model_copy(update={"prev": None, "hash": None}) for e in sealed])
    assert value(metrics, "bulkhead_findings_total") == 1
    assert view.steps[0].state.value == "verified"


def test_approval_wait_is_measured_from_waiting_to_approved():
    metrics = WorkerMetrics()

    def entry(seq: int, at: str, kind: str, **detail: object) -> AuditEntry:
        return AuditEntry(incident_id="inc-a", seq=seq, at=at, kind=kind, detail=detail)

    metrics.observe_audit(
        [
            entry(1, "2026-11-26T10:00:00+00:00", "finding.received"),
            entry(2, "2026-11-26T10:00:01+00:00", "step.planned", step="s", awaiting_approval=True),
            entry(3, "2026-11-26T10:00:01+00:00", "step.awaiting_approval", step="s"),
            entry(4, "2026-11-26T10:01:31+00:00", "step.approval", step="s", principal="a"),
            entry(5, "2026-11-26T10:01:31+00:00", "step.approved", step="s"),
            entry(6, "2026-11-26T10:01:32+00:00", "step.verified", step="s"),
        ]
    )
    assert value(metrics, "bulkhead_approval_wait_seconds_sum") == 90
    assert value(metrics, "bulkhead_time_to_contain_seconds_sum") == 92
    assert value(metrics, "bulkhead_step_transitions_total", state="approved") == 1
    assert value(metrics, "bulkhead_step_transitions_total", state="approval") == 0
