"""A decision made again after a crash may differ from the one the lost worker acted on.

The worker is SIGKILLed while it contains two controllers at once, in the incident's
first workflow task: the decision and both changes are lost with the task; the plans,
signalled before apply, are not, and both writes land. Before the next worker starts, the
policy changes (here, a scripted policy that now names only the second controller; the
kill switch, making steps wait for a person, is the everyday way to get there). The next
worker decides again and:
- finds the second controller's recorded plan, because plans are numbered per step, not
  across the decision's steps, and keeps the pre-incident state as what to restore (a new
  plan would read the controller in flash and record that);
- tells a person about the first controller's change, which this run never made and
  nothing holds or undoes: what it was and what the controller held before.

Real Temporal dev server, real lab Modbus controllers, a real worker process."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

from conftest import free_port
from harness import (
    first_step_is,
    kill_when,
    make_settings,
    release_and_end,
    revert_by_hand,
    start_script_worker,
    stop_workers,
    wait_for,
)
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from workflow_fakes import fallback_step, finding, send

from contracts.incident import (
    ApproveRequest,
    IncidentParams,
    IncidentView,
    Principal,
    ReleaseRequest,
    StepState,
    StepView,
)
from contracts.names import IncidentSignal, IncidentUpdate
from orchestrator.config import Settings
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, TrafficLab

WORKER = Path(__file__).with_name("scripted_worker.py")
FIRST, SECOND = "fallback:tsc-0001", "fallback:tsc-0002"  # units 1 and 2 in the lab
ALICE = Principal(name="alice", roles=["responder"])


def start_worker(
    env: WorkflowEnvironment, queue: str, lab: TrafficLab, steps: Path, log: Path
) -> subprocess.Popen[bytes]:
    address = env.client.service_client.config.target_host
    return start_script_worker(address, WORKER, log, queue, str(lab.port), str(steps))


def write_steps(path: Path, *steps: dict[str, Any]) -> None:
    path.write_text(json.dumps(list(steps)))


async def kill_mid_write(
    env: WorkflowEnvironment, client: Client, lab: TrafficLab, params: IncidentParams, tmp: Path
) -> tuple[subprocess.Popen[bytes], Path, Path, Settings]:
    """A worker contains both controllers (the scripted policy names both) and is SIGKILLed
    while both writes are in flight. The steps file, the log and the settings, for the
    next worker."""
    settings = make_settings(lab.port, state_dir=tmp)
    steps, log = tmp / "steps.json", tmp / "workers.log"
    write_steps(steps, fallback_step("tsc-0001"), fallback_step("tsc-0002"))
    first = start_worker(env, settings.task_queue, lab, steps, log)
    await send(client, settings, params)
    # Mid-write: both controllers are still busy.
    await kill_when(first, lambda: bool(lab.write_count(1) and lab.write_count(2)), "a write")
    return first, steps, log, settings


def settled(view: IncidentView) -> bool:
    """The second controller held again, and the run has said what it did not make."""
    second = next((s for s in view.steps if s.id == SECOND), None)
    said = any(e.kind == "step.unclaimed" for e in view.audit)
    return second is not None and second.state is StepState.VERIFIED and said


async def test_a_decision_that_differs_after_a_crash_keeps_recorded_plans_and_says_the_rest(
    temporal_env: WorkflowEnvironment, temporal_client: Client, tmp_path: Path
):
    lab = TrafficLab(port=free_port(), write_delay_s=1.0)
    await lab.start()
    entity = f"redecide-{uuid.uuid4().hex[:6]}"
    params = IncidentParams(incident_id=f"inc-{entity}", entity=entity)
    first = second = None
    try:
        first, steps, log, settings = await kill_mid_write(
            temporal_env, temporal_client, lab, params, tmp_path
        )
        write_steps(steps, fallback_step("tsc-0002"))  # the policy now names only unit 2
        second = start_worker(temporal_env, settings.task_queue, lab, steps, log)
        view = await wait_for(temporal_client, params.incident_id, settled, timeout_s=60)
        history = await temporal_client.get_workflow_handle(params.incident_id).fetch_history()
        modes = [await lab.read_mode(unit) for unit in (1, 2)]
        writes = [lab.write_count(unit) for unit in (1, 2)]
        released = await release_and_end(
            temporal_client,
            params.incident_id,
            ReleaseRequest(principal=Principal(name="dora"), reason="done"),
        )
        after_release = [await lab.read_mode(unit) for unit in (1, 2)]
    finally:
        stop_workers(first, second)
        await lab.stop()
    assert modes == [MODE_FLASH, MODE_FLASH], "both lost writes landed"
    assert writes == [1, 1], "nothing written twice"
    normal = {"mode": "normal", "value": MODE_NORMAL}
    [held] = view.steps
    assert held.id == SECOND
    assert held.rollback_intent == normal, "restores what the lost attempt planned against"
    signalled = [
        e
        for e in history.events
        if e.workflow_execution_signaled_event_attributes.signal_name
        == IncidentSignal.PLAN_RECORDED
    ]
    assert len(signalled) == 2, "the second worker planned nothing again"
    [unclaimed] = [e for e in view.audit if e.kind == "step.unclaimed"]
    detail: dict[str, Any] = unclaimed.detail
    assert detail["step"] == FIRST
    assert detail["before"] == normal and detail["target"] == {"asset": "tsc-0001"}
    assert detail["covered"] is False
    assert view.escalated and any(FIRST in reason for reason in view.escalations)
    # A release undoes what the incident holds; the unclaimed change is left to the person
    # it was reported to.
    assert released.steps[0].state is StepState.ROLLED_BACK
    assert after_release == [MODE_FLASH, MODE_NORMAL]


async def test_a_step_that_waits_after_the_crash_keeps_its_plan_across_continue_as_new(
    temporal_env: WorkflowEnvironment, temporal_client: Client, tmp_path: Path
):
    """The decision after the crash makes the first controller's step wait for a person
    (the everyday case: the kill switch). Its lost change is reported, the run continues
    as new while it waits, and the step approved in the next run still restores what the
    controller held before the incident: the plan travels with the carry."""
    lab = TrafficLab(port=free_port(), write_delay_s=1.0)
    await lab.start()
    entity = f"rewait-{uuid.uuid4().hex[:6]}"
    params = IncidentParams(incident_id=f"inc-{entity}", entity=entity, max_history_events=100)
    first = second = None
    try:
        first, steps, log, settings = await kill_mid_write(
            temporal_env, temporal_client, lab, params, tmp_path
        )
        waits = fallback_step("tsc-0001", approval={"required": 1, "roles": ["responder"]})
        write_steps(steps, waits, fallback_step("tsc-0002"))
        second = start_worker(temporal_env, settings.task_queue, lab, steps, log)
        await wait_for(temporal_client, params.incident_id, settled, timeout_s=60)
        await grow_until_continued(temporal_client, settings, params)
        handle = temporal_client.get_workflow_handle(params.incident_id)
        request = ApproveRequest(step_id=FIRST, principal=ALICE, reason="contain it")
        await handle.execute_update(IncidentUpdate.APPROVE, request, result_type=StepView)
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: all(s.state is StepState.VERIFIED for s in v.steps) and len(v.steps) == 2,
            timeout_s=60,
        )
        writes = lab.write_count(1)
    finally:
        stop_workers(first, second)
        await lab.stop()
    approved = next(s for s in view.steps if s.id == FIRST)
    assert approved.rollback_intent == {"mode": "normal", "value": MODE_NORMAL}
    assert writes == 1, "the approved apply found the controller in flash already"
    unclaimed = [e for e in view.audit if e.kind == "step.unclaimed"]
    assert [e.detail["step"] for e in unclaimed] == [FIRST], "said once, not again after it"


async def test_a_lost_reapply_that_the_run_undoes_anyway_is_audited_not_escalated(
    temporal_env: WorkflowEnvironment, temporal_client: Client, tmp_path: Path
):
    """A drift check re-applies a step and the worker dies mid-write; by the time the next
    worker runs the task again (a workflow task timeout later) the step's lease has run
    out, so the run rolls it back instead of re-applying. The lost re-apply's plan is
    unclaimed, but the rollback restores the state from before the incident, which the
    re-apply never changed: audited as covered, no one paged."""
    lab = TrafficLab(port=free_port(), write_delay_s=1.0)
    await lab.start()
    settings = make_settings(lab.port, state_dir=tmp_path)
    steps, log = tmp_path / "steps.json", tmp_path / "workers.log"
    # The re-apply comes 3-4 s after the step holds, the next worker 10 s after that.
    write_steps(steps, fallback_step("tsc-0001", lease_s=10))
    entity = f"relapse-{uuid.uuid4().hex[:6]}"
    params = IncidentParams(incident_id=f"inc-{entity}", entity=entity, drift_check_s=2)
    first = start_worker(temporal_env, settings.task_queue, lab, steps, log)
    second = None
    try:
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client, params.incident_id, lambda v: first_step_is(v, StepState.VERIFIED)
        )
        await revert_by_hand(lab)  # the second write; the re-apply's is the third
        await kill_when(first, lambda: lab.write_count(1) >= 3, "the re-apply's write")
        second = start_worker(temporal_env, settings.task_queue, lab, steps, log)
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: first_step_is(v, StepState.ROLLED_BACK),
            timeout_s=60,
        )
        mode = await lab.read_mode(1)
    finally:
        stop_workers(first, second)
        await lab.stop()
    kinds = [e.kind for e in view.audit]
    assert "lease.expired" in kinds, kinds
    [unclaimed] = [e for e in view.audit if e.kind == "step.unclaimed"]
    assert unclaimed.detail["covered"] is True and unclaimed.detail["token"].endswith("#2")
    assert not view.escalated, view.escalations
    assert mode == MODE_NORMAL


async def grow_until_continued(client: Client, settings: Settings, params: IncidentParams) -> None:
    """Findings until the history passes `max_history_events` and the run continues as
    new (each finding adds a few events; how many depends on how the worker batches)."""
    for _ in range(200):
        await send(client, settings, params, finding())
        view = await wait_for(client, params.incident_id, lambda v: True)
        if view.run >= 2:
            return
    raise AssertionError("200 findings and the run never continued as new")
