"""Record workflow histories for the replay test (tests/workflows/test_replay.py).

`make histories` runs this (with PYTHONPATH=.:tests, as pytest's `pythonpath`) after any
change under workflows/, and the result is
committed: one folder per version of the workflow code (histories/<source hash>/), one
history per path an incident or the city record can take. Older folders stay: they
stand for incidents that started under older code and are still running somewhere, so
the current code must keep replaying them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from conftest import free_port
from grant_signing import signing_client
from harness import (
    first_step_is,
    make_settings,
    release_and_end,
    revert_by_hand,
    running_worker,
    wait_for,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from workflow_fakes import (
    ScriptedEngine,
    SharedDependency,
    fallback_step,
    finding,
    guarded_activities,
    new_incident,
    scripted_activities,
    send,
    send_many,
)
from workflow_histories import HISTORIES, source_hash

from contracts.city import AutomationChange
from contracts.incident import (
    ApproveRequest,
    DenyRequest,
    ExtendRequest,
    IncidentStatus,
    IncidentView,
    Principal,
    ReleaseRequest,
    ReleaseStepRequest,
    StepState,
)
from contracts.names import STATE_QUERY
from orchestrator.config import Settings
from orchestrator.lab.traffic import TrafficLab
from orchestrator.temporal.city import TemporalCity
from orchestrator.temporal.client import temporal_binary
from workflows.auditing import EXPORT_DELAY
from workflows.visibility import KEYS as VISIBILITY_KEYS

GATED = {
    "required": 2,
    "roles": ["responder", "duty-officer"],
    "must_include_roles": ["duty-officer"],
    "timeout_s": 600,
}
ALICE = Principal(id="local:alice", name="alice", roles=["responder"])
DORA = Principal(id="local:dora", name="dora", roles=["duty-officer"])
IDP_DORA = Principal(id="oidc:https://idp.example#u-17", name="Dora", roles=["duty-officer"])

Recorded = list[tuple[str, WorkflowHandle]]
Scenario = Callable[[Client, Settings, TrafficLab], Awaitable[Recorded]]


def handle_of(client: Client, incident_id: str, run_id: str | None = None) -> WorkflowHandle:
    return client.get_workflow_handle(incident_id, run_id=run_id, result_type=IncidentView)


async def released(client: Client, incident_id: str, who: Principal) -> WorkflowHandle:
    run_id = (await handle_of(client, incident_id).describe()).run_id
    # Its grant names the entity's current incident (key@n after the first).
    current = await handle_of(client, incident_id).query(STATE_QUERY, result_type=IncidentView)
    request = ReleaseRequest(principal=who, reason="recorded", incident_id=current.incident_id)
    await release_and_end(client, incident_id, request)
    return handle_of(client, incident_id, run_id)  # the run that released, now ended


async def auto_contain_and_release(client: Client, settings: Settings, lab: TrafficLab) -> Recorded:
    """A policy step runs on its own (plan, apply, verify); a duplicate changes nothing;
    release reverts it."""
    engine = ScriptedEngine([fallback_step("tsc-0001")])
    async with running_worker(client, settings, scripted_activities(settings, engine)):
        params = new_incident()
        await send(client, settings, params, webhook_id="wh-1")
        await send(client, settings, params, webhook_id="wh-1")  # a duplicate
        await wait_for(client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED)
        return [("auto-contain-release", await released(client, params.incident_id, DORA))]


async def four_eyes_deny_extend(client: Client, settings: Settings, lab: TrafficLab) -> Recorded:
    """Two gated steps: one approved by two principals (one local, one from an IdP),
    then extended; the other denied. Then released."""
    engine = ScriptedEngine(
        [
            fallback_step("tsc-0001", approval=GATED),
            fallback_step("tsc-0002", approval=GATED),
        ]
    )
    async with running_worker(client, settings, scripted_activities(settings, engine)):
        params = new_incident()
        await send(client, settings, params)
        await wait_for(
            client, params.incident_id, lambda v: v.status is IncidentStatus.AWAITING_APPROVAL
        )
        handle = handle_of(client, params.incident_id)
        for who in (ALICE, IDP_DORA):
            await handle.execute_update(
                "approve", ApproveRequest(step_id="fallback:tsc-0001", principal=who, reason="ok")
            )
        await handle.execute_update(
            "deny", DenyRequest(step_id="fallback:tsc-0002", principal=DORA, reason="no")
        )
        await wait_for(
            client,
            params.incident_id,
            lambda v: first_step_is(v, StepState.VERIFIED),
        )
        await handle.execute_update(
            "extend",
            ExtendRequest(step_id="fallback:tsc-0001", principal=DORA, lease_s=600, reason="more"),
        )
        return [("four-eyes-deny-extend", await released(client, params.incident_id, DORA))]


async def late_approval_and_step_release(
    client: Client, settings: Settings, lab: TrafficLab
) -> Recorded:
    """Nobody approves in time: the step is escalated and marked overdue, then approved
    late. Another step is released on its own; then the incident."""
    late = {"required": 1, "timeout_s": 1, "on_timeout": "escalate"}
    engine = ScriptedEngine([fallback_step("tsc-0002", approval=late), fallback_step("tsc-0003")])
    async with running_worker(client, settings, scripted_activities(settings, engine)):
        params = new_incident()
        await send(client, settings, params)
        await wait_for(client, params.incident_id, lambda v: v.status is IncidentStatus.ESCALATED)
        handle = handle_of(client, params.incident_id)
        await handle.execute_update(
            "approve", ApproveRequest(step_id="fallback:tsc-0002", principal=DORA, reason="late")
        )
        await handle.execute_update(
            "release_step",
            ReleaseStepRequest(step_id="fallback:tsc-0003", principal=DORA, reason="clean"),
        )
        await wait_for(client, params.incident_id, lambda v: first_step_is(v, StepState.VERIFIED))
        return [("late-approval-step-release", await released(client, params.incident_id, DORA))]


async def lease_expiry(client: Client, settings: Settings, lab: TrafficLab) -> Recorded:
    """A step's lease runs out: the workflow reverts it on its own, then it is released."""
    engine = ScriptedEngine([fallback_step("tsc-0003", lease_s=2)])
    async with running_worker(client, settings, scripted_activities(settings, engine)):
        params = new_incident()
        await send(client, settings, params)
        await wait_for(
            client,
            params.incident_id,
            lambda v: first_step_is(v, StepState.ROLLED_BACK),
        )
        return [("lease-expiry", await released(client, params.incident_id, ALICE))]


async def drift_reapply(client: Client, settings: Settings, lab: TrafficLab) -> Recorded:
    """A controller put back to normal behind Bulkhead's back is caught and re-contained."""
    engine = ScriptedEngine([fallback_step("tsc-0004")])
    async with running_worker(client, settings, scripted_activities(settings, engine)):
        params = new_incident(drift_check_s=2)
        await send(client, settings, params)
        await wait_for(client, params.incident_id, lambda v: first_step_is(v, StepState.VERIFIED))
        await revert_by_hand(lab, device_id=4)
        await wait_for(
            client,
            params.incident_id,
            lambda v: (
                any(e.kind == "step.drift" for e in v.audit)
                and first_step_is(v, StepState.VERIFIED)
            ),
            timeout_s=60,
        )
        return [("drift-reapply", await released(client, params.incident_id, ALICE))]


async def guard_rollback(client: Client, settings: Settings, lab: TrafficLab) -> Recorded:
    """A verified step harms an essential service: the guard, after the settle timer,
    rolls it back and escalates."""
    dependency = SharedDependency(breaks_on_apply=True, settle_s=0.5)
    return await guarded(client, settings, dependency, IncidentStatus.FAILED, "guard-rollback")


async def guard_release_while_settling(
    client: Client, settings: Settings, lab: TrafficLab
) -> Recorded:
    """A guarded step is released while its guard waits for the change to settle: the run
    ends without the second look, its timer left behind."""
    dependency = SharedDependency(breaks_on_apply=False, settle_s=600.0)
    name = "guard-release-while-settling"
    return await guarded(client, settings, dependency, IncidentStatus.CONTAINED, name)


async def guarded(
    client: Client,
    settings: Settings,
    dependency: SharedDependency,
    status: IncidentStatus,
    name: str,
) -> Recorded:
    """One guarded step watching `dependency`, recorded once its incident reaches `status`
    and a duty officer released it."""
    activities, _ = guarded_activities(settings, dependency)
    async with running_worker(client, settings, activities):
        params = new_incident()
        await send(client, settings, params)
        await wait_for(client, params.incident_id, lambda v: v.status is status)
        return [(name, await released(client, params.incident_id, DORA))]


async def continue_as_new(client: Client, settings: Settings, lab: TrafficLab) -> Recorded:
    """A long incident continues as new with its state carried; both runs are kept."""
    engine = ScriptedEngine([fallback_step("tsc-0002")])
    async with running_worker(client, settings, scripted_activities(settings, engine)):
        params = new_incident(max_history_events=100)
        await send(client, settings, params)
        first = (await handle_of(client, params.incident_id).describe()).run_id
        for _ in range(40):
            await send(client, settings, params, finding())
        await wait_for(
            client,
            params.incident_id,
            lambda v: v.findings_received >= 41 and v.status is IncidentStatus.CONTAINED,
        )
        current = (await handle_of(client, params.incident_id).describe()).run_id
        assert current != first, "the incident never continued as new"
        await released(client, params.incident_id, DORA)
        return [
            ("continue-as-new-first-run", handle_of(client, params.incident_id, first)),
            ("continue-as-new-next-run", handle_of(client, params.incident_id, current)),
        ]


async def rest_and_next_incident(client: Client, settings: Settings, lab: TrafficLab) -> Recorded:
    """Released, the incident rests (readable, listed); the entity's next finding opens
    incident @2, linked to the first; a restart's recheck verifies its held step now."""
    engine = ScriptedEngine([fallback_step("tsc-0003")])
    async with running_worker(client, settings, scripted_activities(settings, engine)):
        params = new_incident()
        await send(client, settings, params)
        await wait_for(client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED)
        release_run = await released(client, params.incident_id, DORA)
        resting = (await handle_of(client, params.incident_id).describe()).run_id
        await send(client, settings, params, finding())
        await wait_for(
            client,
            params.incident_id,
            lambda v: v.incident_id.endswith("@2") and v.status is IncidentStatus.CONTAINED,
        )
        next_run = (await handle_of(client, params.incident_id).describe()).run_id
        await handle_of(client, params.incident_id).signal("recheck", "worker started")
        await wait_for(client, params.incident_id, lambda v: v.steps[0].drift_checks >= 1)
        await released(client, params.incident_id, DORA)
        return [
            ("rest-release-run", release_run),
            ("rest-idle-run", handle_of(client, params.incident_id, resting)),
            ("rest-next-incident-recheck", handle_of(client, params.incident_id, next_run)),
        ]


async def findings_in_batches(client: Client, settings: Settings, lab: TrafficLab) -> Recorded:
    """Findings coalesced into one signal; their audit entries exported by the timer
    (EXPORT_DELAY) rather than at once, and the findings count published with them."""
    engine = ScriptedEngine([])
    async with running_worker(client, settings, scripted_activities(settings, engine)):
        params = new_incident()
        await send_many(client, settings, params, [finding() for _ in range(3)])
        await wait_for(client, params.incident_id, lambda v: v.findings_received == 3)
        await send_many(client, settings, params, [finding(), finding()])
        # Past EXPORT_DELAY: the timer sends the batch out.
        await asyncio.sleep(EXPORT_DELAY.total_seconds() + 0.5)
        await wait_for(client, params.incident_id, lambda v: v.findings_received == 5)
        return [("findings-in-batches", await released(client, params.incident_id, DORA))]


async def city_pause_resume(client: Client, settings: Settings, lab: TrafficLab) -> Recorded:
    """The city record: automation paused and resumed by principals."""
    city = TemporalCity(client, settings)
    async with running_worker(client, settings, scripted_activities(settings, ScriptedEngine([]))):
        await city.ensure()
        await city.set_paused(AutomationChange(principal=DORA, reason="drill"), paused=True)
        await city.set_paused(AutomationChange(principal=IDP_DORA, reason="over"), paused=False)
        await city.view()
    return [("city-pause-resume", client.get_workflow_handle(city.workflow_id))]


SCENARIOS: tuple[Scenario, ...] = (
    auto_contain_and_release,
    four_eyes_deny_extend,
    late_approval_and_step_release,
    lease_expiry,
    guard_rollback,
    guard_release_while_settling,
    drift_reapply,
    continue_as_new,
    rest_and_next_incident,
    findings_in_batches,
    city_pause_resume,
)


async def record() -> Path:
    out = HISTORIES / source_hash()
    out.mkdir(parents=True, exist_ok=True)
    env = await WorkflowEnvironment.start_local(
        search_attributes=VISIBILITY_KEYS,
        dev_server_existing_path=str(temporal_binary()),
        data_converter=pydantic_data_converter,
    )
    lab = TrafficLab(port=free_port())
    await lab.start()
    try:
        for scenario in SCENARIOS:
            settings = make_settings(lab.port, state_dir=Path(tempfile.mkdtemp()))
            for name, handle in await scenario(signing_client(env.client), settings, lab):
                history = await handle.fetch_history()
                (out / f"{name}.json").write_text(history.to_json())
                print(f"{out.name}/{name}: {len(history.events)} events", file=sys.stderr)
    finally:
        await lab.stop()
        await env.shutdown()
    return out


if __name__ == "__main__":
    print(asyncio.run(record()), flush=True)
    # Every history is written. Leave without the interpreter's finalisation, during which
    # a thread of Temporal's core sometimes calls back into Python and aborts the process
    # ("PyGILState_Release: thread state ... must be current": 4 runs in 8 at 525101d),
    # and `make histories` failed after it had done its work.
    sys.stderr.flush()
    os._exit(0)
