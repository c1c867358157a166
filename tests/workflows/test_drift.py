"""Drift checks: a held step's target is verified again on a schedule, so a containment
undone behind Bulkhead's back (a reboot, an operator's hand) is caught and re-applied or
escalated, as the policy says.

Against the lab's real Modbus controller: the "hand" is a direct register write from
another Modbus client, exactly what a field technician's tool would send.
"""

from __future__ import annotations

import asyncio

import pytest
from harness import make_settings, release_and_end, revert_by_hand, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import ScriptedEngine, fallback_step, new_incident, scripted_activities, send

from contracts.incident import IncidentView, Principal, ReleaseRequest, StepState
from orchestrator.audit.metrics import WorkerMetrics
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, TrafficLab
from orchestrator.temporal.recheck import recheck_held

# Generous: the first check is 2 s after verify, and the dev server fires timers on a
# ~1 s tick; a loaded machine must not turn that into a failure.
DEADLINE_S = 60.0


def kinds(view: IncidentView) -> list[str]:
    return [entry.kind for entry in view.audit]


def verified(view: IncidentView) -> bool:
    return bool(view.steps) and view.steps[0].state is StepState.VERIFIED


async def verified_again(client: Client, incident_id: str) -> IncidentView:
    """The step verified a second time: the drift was caught and the step re-applied."""
    return await wait_for(
        client,
        incident_id,
        lambda v: verified(v) and kinds(v).count("step.verified") == 2,
        timeout_s=DEADLINE_S,
    )


def drift_counted(view: IncidentView, outcome: str) -> float:
    metrics = WorkerMetrics()
    metrics.observe_audit(view.audit)
    value = metrics.registry.get_sample_value(
        "bulkhead_drift_total", {"adapter": "modbus", "outcome": outcome}
    )
    return value or 0.0


@pytest.mark.parametrize("cache", ["cached", "replayed"])
async def test_controller_reverted_by_hand_is_caught_and_contained_again(
    temporal_client: Client, traffic_lab: TrafficLab, cache: str
):
    """Also with every workflow task replayed from history: the checks are deterministic."""
    settings = make_settings(traffic_lab.port)
    activities = scripted_activities(settings, ScriptedEngine([fallback_step("tsc-0001")]))
    params = new_incident(drift_check_s=2)
    worker = running_worker(
        temporal_client, settings, activities, replay_every_task=cache == "replayed"
    )
    async with worker:
        await send(temporal_client, settings, params)
        before = await wait_for(temporal_client, params.incident_id, verified)
        assert await traffic_lab.read_mode(1) == MODE_FLASH
        await revert_by_hand(traffic_lab)
        view = await verified_again(temporal_client, params.incident_id)
        assert await traffic_lab.read_mode(1) == MODE_FLASH, "re-contained on the target"
        step = view.steps[0]
        drift = next(e for e in view.audit if e.kind == "step.drift")
        assert drift.detail["outcome"] == "reapply"
        assert drift.detail["observed"] == {"mode": "normal", "value": MODE_NORMAL}
        seen = kinds(view)
        assert seen[seen.index("step.drift") :].count("step.applying") == 1, "applied again"
        # The re-apply keeps the lease and the first rollback intent (what the target held
        # before the incident), and records what the re-plan found beside it.
        assert step.lease_expires_at == before.steps[0].lease_expires_at
        assert step.rollback_intent == {"mode": "normal", "value": MODE_NORMAL}
        reapplied = [e for e in view.audit if e.kind == "step.intent"][-1]
        assert reapplied.detail["reapply"] is True
        assert reapplied.detail["found"] == {"mode": "normal", "value": MODE_NORMAL}
        assert not view.escalated
        assert drift_counted(view, "reapply") == 1
        # A release still undoes the containment: the controller goes back to normal.
        await release_and_end(
            temporal_client,
            params.incident_id,
            ReleaseRequest(principal=Principal(name="dora"), reason="done"),
        )
    assert await traffic_lab.read_mode(1) == MODE_NORMAL


async def test_policy_escalate_leaves_the_reverted_controller_as_found_and_says_why(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0001", drift="escalate")])
    params = new_incident(drift_check_s=2)
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        await wait_for(temporal_client, params.incident_id, verified)
        await revert_by_hand(traffic_lab)
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: bool(v.steps) and v.steps[0].state is StepState.FAILED,
            timeout_s=DEADLINE_S,
        )
    step = view.steps[0]
    assert await traffic_lab.read_mode(1) == MODE_NORMAL, "left as found"
    assert traffic_lab.write_count(1) == 2, "the apply and the hand, nothing from Bulkhead after"
    assert step.lease_expires_at is None
    assert "drift" in (step.error or "") and "escalate" in (step.error or "")
    assert view.escalated and any("drift" in reason for reason in view.escalations)
    drift = next(e for e in view.audit if e.kind == "step.drift")
    assert drift.detail["outcome"] == "escalate"
    assert drift.detail["observed"] == {"mode": "normal", "value": MODE_NORMAL}
    assert kinds(view).count("step.applying") == 1
    assert drift_counted(view, "escalate") == 1


async def test_step_that_stays_in_place_is_verified_again_without_reapply(
    temporal_client: Client, traffic_lab: TrafficLab
):
    """The interval comes from the settings when the caller does not set one."""
    settings = make_settings(traffic_lab.port, drift_check_s=2)
    activities = scripted_activities(settings, ScriptedEngine([fallback_step("tsc-0001")]))
    params = new_incident()
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: verified(v) and v.steps[0].drift_checks >= 2,
            timeout_s=DEADLINE_S,
        )
    assert await traffic_lab.read_mode(1) == MODE_FLASH
    assert traffic_lab.write_count(1) == 1, "one write: the first apply"
    assert kinds(view).count("step.applying") == 1
    assert "step.drift" not in kinds(view)
    assert view.steps[0].verification is not None and view.steps[0].verification["ok"]


async def test_a_lab_and_worker_restart_is_rechecked_at_once_not_at_the_next_interval(
    temporal_client: Client, traffic_lab: TrafficLab
):
    """The lab reboots (its controllers come back in normal mode) and the worker
    restarts: the worker's start asks every incident holding a step to verify it now, so
    the containment is restored long before the hour-long drift interval."""
    settings = make_settings(traffic_lab.port)
    activities = scripted_activities(settings, ScriptedEngine([fallback_step("tsc-0001")]))
    params = new_incident(drift_check_s=3600)
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        await wait_for(temporal_client, params.incident_id, verified)
    await traffic_lab.stop()
    await traffic_lab.start()  # a rebooted controller: normal mode, nothing contained
    assert await traffic_lab.read_mode(1) == MODE_NORMAL
    async with running_worker(temporal_client, settings, activities):
        asked = 0
        for _ in range(100):  # the list is eventually consistent; a restart retries
            asked = await recheck_held(temporal_client, settings, "worker started")
            if asked:
                break
            await asyncio.sleep(0.3)
        assert asked == 1
        view = await verified_again(temporal_client, params.incident_id)
    assert await traffic_lab.read_mode(1) == MODE_FLASH, "re-contained on the target"
    assert "drift.recheck" in kinds(view)
    drift = next(e for e in view.audit if e.kind == "step.drift")
    assert drift.detail["observed"] == {"mode": "normal", "value": MODE_NORMAL}
