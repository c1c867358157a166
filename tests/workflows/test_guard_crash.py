"""The guard survives a crash: a worker SIGKILLed in the middle of a guarded step, before
its workflow task completed, must not leave harm to an essential service unseen.

The next worker runs the lost task again. Whatever that task read from the target or the
services must be what the first attempt read, not a fresh read of what the first attempt
already changed:
- killed after apply harmed dispatch: the next worker finds the plan in the signal sent
  before apply. If it also probed the guard again, it would compare "unhealthy" after
  with "unhealthy" before, see no harm, and leave dispatch down. The guard's look before
  the change travels with the plan's signal (workflows/changing.py, `_contain`);
- killed after the guard's look found dispatch down and the rollback healed it: if the
  next worker probed again it would find dispatch healthy, see no harm, and leave the
  step "verified" while its target is restored (a drift check would then apply the
  harmful change again). The run records its reads before it rolls back (`record_reads`), so the
  look is in history and the next worker rolls back again instead."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from harness import make_settings, start_script_worker, stop_workers, wait_for
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from workflow_fakes import new_incident, send

from contracts.incident import IncidentView, StepState
from contracts.names import Activity, IncidentSignal

WORKER = Path(__file__).with_name("guard_crash_worker.py")


def start_worker(
    env: WorkflowEnvironment, queue: str, broken: Path, log: Path, *options: str
) -> subprocess.Popen[bytes]:
    """The worker script with `options`; its state dir beside `broken`."""
    address = env.client.service_client.config.target_host
    return start_script_worker(address, WORKER, log, queue, str(broken), *options)


def dispatch_health(view: IncidentView, moment: str) -> bool | None:
    report = view.steps[0].guard_report if view.steps else None
    if report is None or moment not in report:
        return None
    healthy: bool | None = report[moment]["services"]["emergency-dispatch"]["healthy"]
    return healthy


def settled(view: IncidentView) -> bool:
    """Rolled back, failed, or held with the guard's look after it seeing no harm: the
    last is what a worker that probed again after the crash would settle on."""
    if not view.steps:
        return False
    state = view.steps[0].state
    held_unharmed = state is StepState.VERIFIED and dispatch_health(view, "after") is True
    return state in (StepState.ROLLED_BACK, StepState.FAILED) or held_unharmed


async def crash_and_recover(
    env: WorkflowEnvironment,
    client: Client,
    tmp_path: Path,
    *first_options: str,
    until: Callable[[IncidentView], bool] = settled,
) -> tuple[IncidentView, History, Path]:
    """A guarded step whose apply breaks dispatch, its first worker started with
    `first_options` (`--die-after CALL`: SIGKILLed right after the adapter's CALL), a
    second worker started once it died. The incident's view once `until` holds, its
    history, and dispatch's health file."""
    settings = make_settings(1, state_dir=tmp_path)
    broken = tmp_path / "dispatch-broken"
    params = new_incident()
    log = tmp_path / "workers.log"
    first = start_worker(env, settings.task_queue, broken, log, *first_options)
    second = None
    try:
        await send(client, settings, params)
        # Waited for on a thread: the test's event loop keeps serving (and a hang report).
        try:
            died: int | None = await asyncio.to_thread(first.wait, 60)
        except subprocess.TimeoutExpired:
            died = None
        assert died == -signal.SIGKILL, f"the first worker never got there:\n{log.read_text()}"
        second = start_worker(env, settings.task_queue, broken, log)
        view = await wait_for(client, params.incident_id, until, timeout_s=60)
        history = await client.get_workflow_handle(params.incident_id).fetch_history()
    finally:
        stop_workers(first, second)
    return view, history, broken


def assert_rolled_back_for_harm(view: IncidentView, broken: Path) -> None:
    step = view.steps[0]
    assert step.state is StepState.ROLLED_BACK, (step.state, step.guard_report)
    assert not broken.exists(), "rolling back healed dispatch"
    kinds = [e.kind for e in view.audit]
    assert "guard.tripped" in kinds and "step.rolled_back" in kinds, kinds
    assert view.escalated
    assert dispatch_health(view, "before") is True
    assert dispatch_health(view, "after") is False


def activities_scheduled(history: History, name: str) -> int:
    return sum(
        e.activity_task_scheduled_event_attributes.activity_type.name == name
        for e in history.events
    )


async def test_a_worker_killed_after_a_harmful_apply_still_rolls_it_back(
    temporal_env: WorkflowEnvironment, temporal_client: Client, tmp_path: Path
):
    view, history, broken = await crash_and_recover(
        temporal_env, temporal_client, tmp_path, "--die-after", "apply"
    )
    assert_rolled_back_for_harm(view, broken)
    signalled = [
        e
        for e in history.events
        if e.workflow_execution_signaled_event_attributes.signal_name
        == IncidentSignal.PLAN_RECORDED
    ]
    # The second worker planned nothing: it found the first attempt's plan and look.
    assert len(signalled) == 1


async def test_a_worker_killed_while_the_guard_rolls_back_leaves_the_step_rolled_back(
    temporal_env: WorkflowEnvironment, temporal_client: Client, tmp_path: Path
):
    view, history, broken = await crash_and_recover(
        temporal_env, temporal_client, tmp_path, "--die-after", "rollback"
    )
    assert_rolled_back_for_harm(view, broken)
    # The look that found the harm was made durable once, before the first rollback.
    assert activities_scheduled(history, Activity.RECORD_READS) == 1
    tripped = [e for e in view.audit if e.kind == "guard.tripped"]
    assert len(tripped) == 1, [e.kind for e in view.audit]


async def test_a_worker_killed_while_it_undoes_a_failed_step_leaves_it_failed_and_undone(
    temporal_env: WorkflowEnvironment, temporal_client: Client, tmp_path: Path
):
    """Verify found the change missing on the target, so the step failed and is rolled
    back; the worker dies mid-rollback. The next one must replay that verification (the
    run records its reads before the rollback) rather than apply and verify again, which
    on a target that now takes the change would leave the step held, its failure gone."""

    def undone_or_held(view: IncidentView) -> bool:
        state = view.steps[0].state if view.steps else None
        return state in (StepState.ROLLED_BACK, StepState.VERIFIED)

    view, history, broken = await crash_and_recover(
        temporal_env,
        temporal_client,
        tmp_path,
        "--die-after",
        "rollback",
        "--verify-fails",
        until=undone_or_held,
    )
    step = view.steps[0]
    assert step.state is StepState.ROLLED_BACK, [e.kind for e in view.audit]
    assert "verification failed" in (step.error or "")
    assert not broken.exists(), "rolling back healed dispatch"
    assert activities_scheduled(history, Activity.RECORD_READS) == 1
    kinds = [e.kind for e in view.audit]
    assert kinds.count("step.applying") == 1 and "guard.tripped" not in kinds, kinds
