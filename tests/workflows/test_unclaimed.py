"""Plans a lost worker signalled that the run does not claim (workflows/unclaimed.py),
told to a person promptly and never lost at a hand-over.

A lost attempt's plan reaches the run as the PLAN_RECORDED signal the CONTAIN activity
sends before apply; here the test sends that signal itself, as a worker that died right
after it would have left it, so each case runs in seconds without killing anything (the
crash itself: test_decision_crash.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from harness import first_step_is, make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import (
    FakeModbusAdapter,
    ScriptedEngine,
    fallback_step,
    finding,
    new_incident,
    send,
)

from contracts.adapter import Plan, StepCommand
from contracts.findings import Finding
from contracts.incident import (
    ApproveRequest,
    IncidentParams,
    IncidentView,
    Principal,
    RecordedPlan,
    ReleaseRequest,
    StepState,
    StepView,
)
from contracts.names import IncidentSignal, IncidentUpdate
from orchestrator.activities import ContainmentActivities
from orchestrator.config import Settings
from orchestrator.wiring.inventory import Inventory

DORA = Principal(name="dora", roles=["duty-officer"])
ALICE = Principal(name="alice", roles=["responder"])
WAITS = fallback_step("tsc-0001", approval={"required": 1, "roles": ["responder"]})


def lost_plan(incident_id: str, asset: str, token_number: int = 1) -> RecordedPlan:
    """The plan signal of an attempt that died after sending it (apply may have landed)."""
    step_id = f"fallback:{asset}"
    command = StepCommand(
        incident_id=incident_id,
        step_id=step_id,
        adapter="modbus",
        action="set",
        target={"asset": asset},
        args={"mode": "flash"},
    )
    plan = Plan(adapter="modbus", summary="set", before={"value": 0}, after={"value": 1})
    return RecordedPlan(token=f"{step_id}#{token_number}", plan=plan, command=command)


def activities_for(settings: Settings, *steps: dict[str, Any]) -> ContainmentActivities:
    engine = ScriptedEngine(list(steps))
    inventory = Inventory.load(settings.policy_dir)
    return ContainmentActivities(engine, inventory, {"modbus": FakeModbusAdapter()})


async def opened(
    client: Client,
    settings: Settings,
    params: IncidentParams,
    state: StepState,
    found: Finding | None = None,
) -> None:
    """The incident opened by a finding, once its step reached `state`."""
    await send(client, settings, params, found)
    await wait_for(client, params.incident_id, lambda v: first_step_is(v, state))


def unclaimed(view: IncidentView) -> list[dict[str, object]]:
    return [e.detail for e in view.audit if e.kind == "step.unclaimed"]


async def test_an_unclaimed_plan_is_told_as_soon_as_the_run_is_quiet(temporal_client: Client):
    """Nothing else happens after the signal: the run must wake for the report alone."""
    settings = make_settings(1)
    params = new_incident()
    handle = temporal_client.get_workflow_handle(params.incident_id)
    async with running_worker(temporal_client, settings, activities_for(settings, WAITS)):
        await opened(temporal_client, settings, params, StepState.AWAITING_APPROVAL)
        await handle.signal(IncidentSignal.PLAN_RECORDED, lost_plan(params.incident_id, "tsc-0003"))
        view = await wait_for(temporal_client, params.incident_id, lambda v: bool(unclaimed(v)))
    [said] = unclaimed(view)
    assert said["step"] == "fallback:tsc-0003" and said["covered"] is False
    assert said["target"] == {"asset": "tsc-0003"} and said["before"] == {"value": 0}
    assert view.escalated and any("fallback:tsc-0003" in r for r in view.escalations)


async def test_a_lost_reapply_of_a_held_step_is_audited_not_escalated(temporal_client: Client):
    """The step holds (the run restores it at release or lease end): the lost re-apply
    only put back what the step holds, so nobody is paged for it."""
    settings = make_settings(1)
    params = new_incident()
    handle = temporal_client.get_workflow_handle(params.incident_id)
    async with running_worker(
        temporal_client, settings, activities_for(settings, fallback_step("tsc-0001"))
    ):
        await opened(temporal_client, settings, params, StepState.VERIFIED)
        reapply = lost_plan(params.incident_id, "tsc-0001", token_number=2)
        await handle.signal(IncidentSignal.PLAN_RECORDED, reapply)
        view = await wait_for(temporal_client, params.incident_id, lambda v: bool(unclaimed(v)))
    [said] = unclaimed(view)
    assert said["covered"] is True and said["token"] == reapply.token
    assert not view.escalated, view.escalations


async def test_a_release_that_comes_with_the_signal_still_tells_it(temporal_client: Client):
    """The signal and a release reach a worker in the same task (queued while none was
    polling): the release's handler is still running when the loop could report, and
    the run hands over right after. It reports before it does."""
    settings = make_settings(1)
    params = new_incident()
    handle = temporal_client.get_workflow_handle(params.incident_id)
    activities = activities_for(settings, WAITS)
    async with running_worker(temporal_client, settings, activities):
        await opened(temporal_client, settings, params, StepState.AWAITING_APPROVAL)
    await handle.signal(IncidentSignal.PLAN_RECORDED, lost_plan(params.incident_id, "tsc-0003"))
    release = asyncio.create_task(
        handle.execute_update(
            IncidentUpdate.RELEASE,
            ReleaseRequest(principal=DORA, reason="done"),
            result_type=IncidentView,
        )
    )
    await asyncio.sleep(1)  # the release is queued on the server, behind the signal
    async with running_worker(temporal_client, settings, activities):
        await release
        rest = await wait_for(temporal_client, params.incident_id, lambda v: v.run >= 2)
    assert [d["step"] for d in unclaimed(rest)] == ["fallback:tsc-0003"]
    assert rest.escalated


async def test_a_step_approved_as_the_run_continues_as_new_claims_it_untold(
    temporal_client: Client,
):
    """The lost attempt's plan is the waiting step's own, and an approval of that step
    comes with it (both queued while no worker was polling, behind enough findings to
    fill the history). The run continues as new once the approval is in, before the step
    runs: the next run runs it first, with the carried plan, so nobody is told of a
    change that the step itself then makes."""
    settings = make_settings(1)
    base = new_incident()
    params = base.model_copy(update={"max_history_events": 100})
    handle = temporal_client.get_workflow_handle(params.incident_id)
    activities = activities_for(settings, WAITS)
    same = finding("the-one")
    async with running_worker(temporal_client, settings, activities):
        await opened(temporal_client, settings, params, StepState.AWAITING_APPROVAL, same)
    for _ in range(120):  # duplicates: past 100 events once a worker takes them
        await send(temporal_client, settings, params, same)
    await handle.signal(IncidentSignal.PLAN_RECORDED, lost_plan(params.incident_id, "tsc-0001"))
    approve = ApproveRequest(step_id=WAITS["id"], principal=ALICE, reason="contain it")
    approval = asyncio.create_task(
        handle.execute_update(IncidentUpdate.APPROVE, approve, result_type=StepView)
    )
    await asyncio.sleep(1)
    async with running_worker(temporal_client, settings, activities):
        await approval
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: v.run >= 2 and v.steps[0].state is StepState.VERIFIED,
        )
    assert unclaimed(view) == [], unclaimed(view)
    assert not view.escalated, view.escalations
    assert view.steps[0].rollback_intent == {"value": 0}, "the carried plan's"
