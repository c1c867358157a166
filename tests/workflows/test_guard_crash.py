"""The guard survives a crash: a worker SIGKILLed after apply harmed an essential
service, before its workflow task completed, must not leave the harm unseen.

The next worker runs the task again: it finds the plan in the signal sent before apply
and applies against it. If it also probed the guard again, it would probe a service the
first apply already broke, compare "unhealthy" after with "unhealthy" before, see no
harm, and leave dispatch down. The guard's look before the change travels with the plan's
signal (workflows/changing.py, `_contain`), so the step is rolled back and escalated."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from harness import make_settings, stop_workers, wait_for
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from workflow_fakes import new_incident, send

from contracts.incident import StepState
from contracts.names import IncidentSignal

WORKER = Path(__file__).with_name("guard_crash_worker.py")
ROOT = WORKER.parents[2]


def start_worker(
    env: WorkflowEnvironment, queue: str, broken: Path, log: Path, *, die_after_apply: bool
) -> subprocess.Popen[bytes]:
    """The worker script, its output in `log` (what a failed start said, for the test's
    message); its state dir beside `broken`."""
    address = env.client.service_client.config.target_host
    command = [sys.executable, str(WORKER), address, queue, str(broken)]
    paths = [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    with log.open("ab") as output:
        return subprocess.Popen(
            [*command, "--die-after-apply"] if die_after_apply else command,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def test_a_worker_killed_after_a_harmful_apply_still_rolls_it_back(
    temporal_env: WorkflowEnvironment, temporal_client: Client, tmp_path: Path
):
    settings = make_settings(1, state_dir=tmp_path)
    broken = tmp_path / "dispatch-broken"
    params = new_incident()
    log = tmp_path / "workers.log"
    first = start_worker(temporal_env, settings.task_queue, broken, log, die_after_apply=True)
    second = None
    try:
        await send(temporal_client, settings, params)
        # Waited for on a thread: the test's event loop keeps serving (and a hang report).
        try:
            died: int | None = await asyncio.to_thread(first.wait, 60)
        except subprocess.TimeoutExpired:
            died = None
        assert died == -signal.SIGKILL, f"the first worker never applied:\n{log.read_text()}"
        assert broken.exists(), "the first apply broke dispatch before the worker died"
        second = start_worker(temporal_env, settings.task_queue, broken, log, die_after_apply=False)
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: bool(v.steps) and v.steps[0].state is StepState.ROLLED_BACK,
            timeout_s=60,
        )
        history = await temporal_client.get_workflow_handle(params.incident_id).fetch_history()
    finally:
        stop_workers(first, second)
    assert not broken.exists(), "rolling back healed dispatch"
    kinds = [e.kind for e in view.audit]
    assert "guard.tripped" in kinds and "step.rolled_back" in kinds, kinds
    step = view.steps[0]
    assert step.guard_report is not None
    assert step.guard_report["before"]["services"]["emergency-dispatch"]["healthy"] is True
    assert step.guard_report["after"]["services"]["emergency-dispatch"]["healthy"] is False
    signalled = [
        e
        for e in history.events
        if e.workflow_execution_signaled_event_attributes.signal_name
        == IncidentSignal.PLAN_RECORDED
    ]
    # The second worker planned nothing: it found the first attempt's plan and look.
    assert len(signalled) == 1
