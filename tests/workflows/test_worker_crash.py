"""Crash-proof: SIGKILL the worker process in the middle of a containment, start another,
and count on the real controllers that every effect landed exactly once.

The kill lands while apply writes, inside the containment's one workflow task, so the
task's local activity results (the decision, the plans) are lost with the worker. The
plans were signalled to the run before apply began (workflows/changing.py, `_contain`):
the new worker must restore from them, not plan again against the changed controller.

The same holds for a re-apply after drift: the drift check's read is in history before
the re-apply starts (`record_reads`), so the new worker re-applies against the recorded
plan instead of reading the controller the lost attempt already put back in flash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import free_port
from harness import kill_when, make_settings, revert_by_hand, stop_workers, wait_for
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from workflow_fakes import finding, send

from contracts.incident import IncidentParams, IncidentView, StepState
from contracts.names import Activity, IncidentSignal
from orchestrator.lab.traffic import MODE_FLASH, TrafficLab

BULKHEAD = str(Path(sys.executable).parent / "bulkhead")
UNITS = {"tsc-0001": 1, "tsc-0002": 2}
PLAN = IncidentSignal.PLAN_RECORDED


def start_worker(env: WorkflowEnvironment, task_queue: str, lab: TrafficLab, state: Path):
    address = env.client.service_client.config.target_host
    environ = {
        **os.environ,
        "BULKHEAD_TASK_QUEUE": task_queue,
        "BULKHEAD_LAB_MODBUS_PORT": str(lab.port),
        "BULKHEAD_STATE_DIR": str(state),
        "BULKHEAD_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [BULKHEAD, "worker", "--temporal-address", address],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_sigkill_mid_apply_then_new_worker_applies_each_effect_once(
    temporal_env: WorkflowEnvironment, temporal_client: Client, tmp_path: Path
):
    lab = TrafficLab(port=free_port(), write_delay_s=1.0)
    await lab.start()
    settings = make_settings(lab.port, state_dir=tmp_path)
    entity = f"crash-{uuid.uuid4().hex[:6]}"
    params = IncidentParams(incident_id=f"inc-{entity}", entity=entity)
    first = start_worker(temporal_env, settings.task_queue, lab, tmp_path)
    second = None
    try:
        await send(
            temporal_client,
            settings,
            params,
            finding(resources=[{"uid": asset} for asset in UNITS]),
        )
        # Mid-write: the controller is still busy.
        await kill_when(first, lambda: any(map(lab.write_count, UNITS.values())), "a write")
        second = start_worker(temporal_env, settings.task_queue, lab, tmp_path)
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: (
                len(v.steps) == len(UNITS) and all(s.state is StepState.VERIFIED for s in v.steps)
            ),
            timeout_s=60,
        )
        modes = {unit: await lab.read_mode(unit) for unit in UNITS.values()}
        history = await temporal_client.get_workflow_handle(params.incident_id).fetch_history()
    finally:
        stop_workers(first, second)
        await lab.stop()
    for unit in UNITS.values():
        assert lab.write_count(unit) == 1, f"unit {unit} written {lab.write_count(unit)} times"
        assert modes[unit] == MODE_FLASH
    assert [s.rollback_intent and s.rollback_intent["mode"] for s in view.steps] == ["normal"] * 2
    events = history.events
    signalled = [
        e for e in events if e.workflow_execution_signaled_event_attributes.signal_name == PLAN
    ]
    # A second worker that planned again would have signalled a second plan per step.
    assert len(signalled) == len(UNITS), "one recorded plan per step, sent before apply"
    contained = [e for e in events if local_activity(e) == Activity.CONTAIN]
    assert len(contained) == len(UNITS), "each step planned, applied and verified in one call"
    for event in contained:
        result = local_activity_result(event)
        assert result["plan"]["before"]["mode"] == "normal", result["plan"]


async def test_sigkill_mid_reapply_after_drift_then_new_worker_records_the_reapply(
    temporal_env: WorkflowEnvironment, temporal_client: Client, tmp_path: Path
):
    lab = TrafficLab(port=free_port(), write_delay_s=1.0)
    await lab.start()
    settings = make_settings(lab.port, state_dir=tmp_path)
    entity = f"drift-{uuid.uuid4().hex[:6]}"
    params = IncidentParams(incident_id=f"inc-{entity}", entity=entity, drift_check_s=2)
    first = start_worker(temporal_env, settings.task_queue, lab, tmp_path)
    second = None
    try:
        await send(temporal_client, settings, params, finding(resources=[{"uid": "tsc-0001"}]))
        await wait_for(temporal_client, params.incident_id, verified_times(1), timeout_s=30)
        await revert_by_hand(lab)  # the second write; the re-apply's is the third
        await kill_when(first, lambda: lab.write_count(1) >= 3, "the re-apply's write")
        second = start_worker(temporal_env, settings.task_queue, lab, tmp_path)
        view = await wait_for(temporal_client, params.incident_id, verified_times(2), timeout_s=60)
        mode = await lab.read_mode(1)
        history = await temporal_client.get_workflow_handle(params.incident_id).fetch_history()
    finally:
        stop_workers(first, second)
        await lab.stop()
    assert mode == MODE_FLASH
    assert lab.write_count(1) == 3, "the apply, the hand, and one re-apply"
    kinds = [e.kind for e in view.audit]
    assert kinds.count("step.drift") == 1, kinds
    reapplied = [e for e in view.audit if e.kind == "step.verified"][-1]
    assert reapplied.detail.get("reapplied") is True
    signalled = [
        e
        for e in history.events
        if e.workflow_execution_signaled_event_attributes.signal_name == PLAN
    ]
    # The re-apply's plan, signalled by the lost attempt, was used: no third one.
    assert len(signalled) == 2
    recorded_reads = [
        e
        for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name == Activity.RECORD_READS
    ]
    assert len(recorded_reads) == 1, "the drift check's read, in history before the re-apply"
    assert view.steps[0].rollback_intent == {"mode": "normal", "value": 0}


def verified_times(count: int) -> Callable[[IncidentView], bool]:
    def verified(view: IncidentView) -> bool:
        seen = [e.kind for e in view.audit].count("step.verified")
        return bool(view.steps) and view.steps[0].state is StepState.VERIFIED and seen == count

    return verified


def local_activity_result(event: HistoryEvent) -> dict[str, Any]:
    """The result a local activity's marker records."""
    marker = event.marker_recorded_event_attributes
    result: dict[str, Any] = json.loads(marker.details["result"].payloads[0].data)
    return result


def local_activity(event: HistoryEvent) -> str | None:
    """The activity type of a local activity's marker (None for any other event)."""
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != "core_local_activity":
        return None
    data = json.loads(marker.details["data"].payloads[0].data)
    return str(data["activity_type"])
