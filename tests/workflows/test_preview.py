"""A step waiting for approval carries a dry-run plan (what the target holds, what it would
hold), so approvers see its effect before they decide; the dry run touches nothing."""

from __future__ import annotations

from harness import make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import ScriptedEngine, fallback_step, new_incident, scripted_activities, send

from contracts.incident import StepState
from contracts.names import Activity
from orchestrator.lab.traffic import TrafficLab


async def test_waiting_step_shows_its_plan_without_touching_the_target(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0003", approval={"required": 1})])
    params = new_incident()
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: bool(v.steps) and v.steps[0].preview is not None,
        )
    step = view.steps[0]
    assert step.state is StepState.AWAITING_APPROVAL
    assert step.preview is not None
    assert (step.preview.before["mode"], step.preview.after["mode"]) == ("normal", "flash")
    assert traffic_lab.write_count(3) == 0, "a preview never writes"
    assert "step.preview" in {e.kind for e in view.audit}
    # The dry run is a local activity in the task that decided: no activity of its own on
    # the server, nor the workflow task that would follow it (PREVIEW_IN_TASK_PATCH).
    history = await temporal_client.get_workflow_handle(params.incident_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert Activity.PLAN not in scheduled
