"""Tracing: one trace runs from the API's signal-with-start through the workflow to the
activities that touched the target, on the real dev server."""

from __future__ import annotations

from harness import make_settings, running_worker, wait_for
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.testing import WorkflowEnvironment
from workflow_fakes import new_incident, send

from contracts.incident import IncidentStatus
from orchestrator.lab.traffic import TrafficLab
from orchestrator.temporal.client import connect
from orchestrator.tracing import interceptors, tracer_provider
from orchestrator.wiring.worker import build_activities


async def test_one_trace_spans_signal_workflow_and_activities(
    temporal_env: WorkflowEnvironment, traffic_lab: TrafficLab
):
    exporter = InMemorySpanExporter()
    settings = make_settings(
        traffic_lab.port,
        temporal_address=temporal_env.client.service_client.config.target_host,
    )
    provider = tracer_provider(settings, exporter)
    client = await connect(settings, tracer_provider=provider)
    params = new_incident()
    async with running_worker(client, settings, build_activities(settings)):
        await send(client, settings, params)
        await wait_for(client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED)
    provider.force_flush()
    spans = exporter.get_finished_spans()
    names = {span.name for span in spans}
    assert "SignalWithStartWorkflow:IncidentWorkflow" in names
    assert "RunWorkflow:IncidentWorkflow" in names
    # Plan, apply and verify run in one local activity (workflows/changing.py, _contain).
    assert "RunActivity:contain_step" in names, names
    start = next(s for s in spans if s.name == "SignalWithStartWorkflow:IncidentWorkflow")
    contain = next(s for s in spans if s.name == "RunActivity:contain_step")
    assert start.context is not None and contain.context is not None
    assert contain.context.trace_id == start.context.trace_id, "one trace, API to target"


def test_tracing_is_off_by_default():
    assert interceptors(make_settings(1)) == []
