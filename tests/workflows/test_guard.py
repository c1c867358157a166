"""The essential-service guard in the workflow: a step that harms a watched essential
service is rolled back and the incident escalates; a harmless one proceeds.

The guard here is a test double wired to the adapter (applying "breaks" the service), so
each case controls exactly what the probes see; the real probes against the lab's
dispatch service are exercised in tests/test_e2e_fallback.py.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from harness import make_settings, release_and_end, running_worker, wait_for
from temporalio import activity
from temporalio.client import Client
from workflow_fakes import SharedDependency, guarded_activities, new_incident, send

from adapters.base import TransientAdapterError
from contracts.adapter import Receipt, StepCommand, Verification
from contracts.incident import (
    ActingOn,
    IncidentStatus,
    IncidentView,
    Principal,
    ReleaseRequest,
    StepState,
)
from contracts.names import Activity
from orchestrator.activities import ContainmentActivities
from orchestrator.config import Settings

DORA = Principal(id="local:dora", name="dora", roles=["duty-officer"])


async def rolled_back(
    client: Client, settings: Settings, activities: ContainmentActivities
) -> IncidentView:
    """A new incident run until its one (guarded) step is rolled back."""
    params = new_incident()
    async with running_worker(client, settings, activities):
        await send(client, settings, params)
        return await wait_for(
            client,
            params.incident_id,
            lambda v: v.steps and v.steps[0].state is StepState.ROLLED_BACK,
        )


async def test_step_that_breaks_an_essential_service_is_rolled_back_and_escalated(
    temporal_client: Client,
):
    settings = make_settings(1)
    dependency = SharedDependency(breaks_on_apply=True)
    activities, adapter = guarded_activities(settings, dependency)
    view = await rolled_back(temporal_client, settings, activities)
    step = view.steps[0]
    assert len(adapter.rollbacks) == 1
    assert dependency.healthy, "the rollback restored the service"
    assert "emergency-dispatch" in (step.error or "")
    assert view.escalated and view.status is IncidentStatus.FAILED
    kinds = [e.kind for e in view.audit]
    assert kinds.index("guard.before") < kinds.index("step.applying")
    # Contained first, then watched: the harm is seen after verification and undone.
    assert kinds.index("step.verified") < kinds.index("guard.after")
    assert kinds.index("guard.tripped") < kinds.index("step.rolled_back")
    tripped = next(e for e in view.audit if e.kind == "guard.tripped")
    assert tripped.detail["services"] == ["emergency-dispatch"]
    # Neither probe waited itself: the workflow waits (a timer) for the change to settle.
    assert [settle for _, settle in dependency.checks] == [False, False]


async def test_a_guarded_step_is_reported_contained_while_its_change_settles(
    temporal_client: Client,
):
    """The guard's second look waits on a durable timer after the task that contained the
    step: the step is reported contained at once, not after the settle time, and is still
    undone once the probe sees the harm."""
    settings = make_settings(1)
    # Long enough that a loaded machine's polls still see the step contained before it.
    dependency = SharedDependency(breaks_on_apply=True, settle_s=4.0)
    activities, adapter = guarded_activities(settings, dependency)
    params = new_incident()
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        contained = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
        assert "guard.after" not in {e.kind for e in contained.audit}
        assert adapter.rollbacks == []
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: v.steps and v.steps[0].state is StepState.ROLLED_BACK,
        )
    assert "emergency-dispatch" in (view.steps[0].error or "")
    assert [settle for _, settle in dependency.checks] == [False, False]
    history = await temporal_client.get_workflow_handle(params.incident_id).fetch_history()
    timers = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for e in history.events
        if e.HasField("timer_started_event_attributes")
    ]
    assert timedelta(seconds=4) in timers, "the settle time is a timer in the workflow"


async def test_step_that_keeps_essential_services_healthy_is_contained(temporal_client: Client):
    settings = make_settings(1)
    dependency = SharedDependency(breaks_on_apply=False)
    activities, adapter = guarded_activities(settings, dependency)
    params = new_incident()
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
    assert view.steps[0].state is StepState.VERIFIED
    assert adapter.rollbacks == []
    assert view.steps[0].guard_report is not None
    assert not view.escalated
    assert {"guard.before", "guard.after"} <= {e.kind for e in view.audit}


async def test_service_already_down_before_the_step_does_not_trip_the_guard(
    temporal_client: Client,
):
    """The guard undoes harm the step caused; an outage that predates it is not that."""
    settings = make_settings(1)
    dependency = SharedDependency(healthy=False, breaks_on_apply=True)
    activities, adapter = guarded_activities(settings, dependency)
    params = new_incident()
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
    assert adapter.rollbacks == []
    assert "guard.tripped" not in {e.kind for e in view.audit}


async def test_a_release_while_the_change_settles_ends_the_run_without_the_second_look(
    temporal_client: Client,
):
    """A watch waiting on a step that stopped holding has nothing left to do: the release
    undoes the step, and its run ends at once rather than after the settle time."""
    settings = make_settings(1)
    dependency = SharedDependency(breaks_on_apply=False, settle_s=600.0)
    activities, adapter = guarded_activities(settings, dependency)
    params = new_incident()
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
        request = ReleaseRequest(principal=DORA, reason="done", incident_id=params.incident_id)
        view = await release_and_end(temporal_client, params.incident_id, request, timeout_s=15)
    assert view.status is IncidentStatus.RELEASED
    assert len(adapter.rollbacks) == 1
    assert "guard.after" not in {e.kind for e in view.audit}
    assert [settle for _, settle in dependency.checks] == [False], "the before-probe only"


async def test_an_apply_retried_after_it_broke_the_service_still_compares_with_before(
    temporal_client: Client,
):
    """The guard probes, plans, applies and verifies in one local activity
    (workflows/changing.py). Its first apply breaks the service and then times out: the
    retry must compare with the probe its first attempt made, from before any apply, not
    probe again and take the broken service for how things were."""
    settings = make_settings(1)
    dependency = SharedDependency(breaks_on_apply=True)
    activities, adapter = guarded_activities(settings, dependency)
    applies: list[str] = []
    apply = adapter.apply

    async def lands_then_times_out(command: StepCommand, *, key: str) -> Receipt:
        applies.append(key)
        receipt = await apply(command, key=key)
        if len(applies) == 1:
            raise TransientAdapterError("no answer from the controller")
        return receipt

    adapter.apply = lands_then_times_out  # type: ignore[method-assign]
    view = await rolled_back(temporal_client, settings, activities)
    assert len(applies) == 2
    assert dependency.healthy, "the rollback restored the service"
    before = next(e for e in view.audit if e.kind == "guard.before")
    assert before.detail["services"]["emergency-dispatch"]["healthy"] is True
    assert [settle for _, settle in dependency.checks] == [False, False], "probed twice"


async def test_a_drift_check_while_the_guard_trips_leaves_the_step_to_the_rollback(
    temporal_client: Client,
):
    """The guard found the step harmful and waits for its look to be recorded before it
    rolls back (record_reads, made slow here); meanwhile a drift check finds the target
    out of its contained state and its own wait ends first. Re-applying would cancel the
    watch about to undo the harm, and put the harmful change back: the check leaves the
    step to the rollback instead."""
    settings = make_settings(1)
    dependency = SharedDependency(breaks_on_apply=True, settle_s=0.5)
    activities, adapter = guarded_activities(settings, dependency)
    verifies = 0

    async def drifts_after_the_first(receipt: Receipt) -> Verification:
        nonlocal verifies
        verifies += 1  # apply's own verify sees the change; every drift check, none
        return Verification(ok=verifies == 1 or not receipt.applied, observed={})

    @activity.defn(name=Activity.RECORD_READS)
    async def slow_for_the_guard(request: ActingOn) -> None:
        if request.reason == "guard.tripped":
            await asyncio.sleep(8)  # a drift check or two comes meanwhile

    adapter.verify = drifts_after_the_first  # type: ignore[method-assign]
    activities.record_reads = slow_for_the_guard  # type: ignore[method-assign]
    # Checked 3 s after the step, well after the guard's look at 0.5 s: the dev server
    # fires timers on a 1 s tick. (If both still came in one task, the drift check would
    # audit the drift first; it must not re-apply either way.)
    params = new_incident(drift_check_s=3)
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        view = await wait_for(
            temporal_client, params.incident_id, undone_or_reapplied, timeout_s=40
        )
    kinds = [e.kind for e in view.audit]
    assert view.steps[0].state is StepState.ROLLED_BACK, kinds
    assert dependency.healthy, "the rollback restored the service"
    assert verifies >= 2, "a drift check ran while the guard waited"
    assert kinds.count("step.applying") == 1, "never re-applied"


def undone_or_reapplied(view: IncidentView) -> bool:
    ended = (StepState.ROLLED_BACK, StepState.FAILED)
    reapplied = [e.kind for e in view.audit].count("step.applying") > 1
    return bool(view.steps) and (view.steps[0].state in ended or reapplied)
