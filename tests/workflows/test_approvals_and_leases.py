"""Approval gates, four-eyes, timeouts, leases, extend and release on the real dev server.

Decisions come from a scripted engine (see workflow_fakes.py); every step writes the real
lab controller over Modbus, and the tests read the controller to check the effect.
"""

from __future__ import annotations

import asyncio

import pytest
from harness import make_settings, release_and_end, running_worker, wait_for
from temporalio.client import Client, WorkflowUpdateFailedError
from workflow_fakes import (
    ScriptedEngine,
    fallback_step,
    new_incident,
    scripted_activities,
    send,
)

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
    StepView,
)
from contracts.names import IncidentUpdate
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, TrafficLab

ALICE = Principal(name="alice", roles=["responder"])
BOB = Principal(name="bob", roles=["responder"])
DORA = Principal(name="dora", roles=["duty-officer", "responder"])
VIC = Principal(name="vic", roles=["viewer"])
GATED = {
    "required": 2,
    "roles": ["responder", "duty-officer"],
    "must_include_roles": ["duty-officer"],
    "timeout_s": 600,
}


def state_of(view: IncidentView, step_id: str) -> StepState:
    return next(s.state for s in view.steps if s.id == step_id)


async def approve(client: Client, incident_id: str, who: Principal, step: str) -> StepView:
    handle = client.get_workflow_handle(incident_id)
    request = ApproveRequest(step_id=step, principal=who, reason="looks right")
    result: StepView = await handle.execute_update(
        IncidentUpdate.APPROVE, request, result_type=StepView
    )
    return result


async def refused(client: Client, incident_id: str, who: Principal, step: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await approve(client, incident_id, who, step)
    return str(caught.value.cause)


async def test_four_eyes_needs_two_distinct_principals_and_a_duty_officer(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0001", approval=GATED)])
    params = new_incident()
    step = "fallback:tsc-0001"
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: v.status is IncidentStatus.AWAITING_APPROVAL,
        )
        no_role = await refused(temporal_client, params.incident_id, VIC, step)
        assert "needs an approver with one of the roles" in no_role
        first = await approve(temporal_client, params.incident_id, ALICE, step)
        assert first.state is StepState.AWAITING_APPROVAL
        assert "already approved" in await refused(temporal_client, params.incident_id, ALICE, step)
        assert "duty-officer" in await refused(temporal_client, params.incident_id, BOB, step)
        assert traffic_lab.write_count(1) == 0, "nothing may happen before the gate opens"
        await approve(temporal_client, params.incident_id, DORA, step)
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: state_of(v, step) is StepState.VERIFIED
        )
    approvals = view.steps[0].approvals
    assert [a.principal for a in approvals] == ["alice", "dora"]
    assert await traffic_lab.read_mode(1) == MODE_FLASH
    assert traffic_lab.write_count(1) == 1


async def test_approving_a_step_not_awaiting_approval_is_refused(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0001")])
    params = new_incident()
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
        message = await refused(temporal_client, params.incident_id, ALICE, "fallback:tsc-0001")
        missing = await refused(temporal_client, params.incident_id, ALICE, "no-such-step")
    assert "not awaiting approval" in message
    assert "no step" in missing


async def test_denied_step_never_touches_the_target(temporal_client: Client, traffic_lab):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0001", approval=GATED)])
    params = new_incident()
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: v.status is IncidentStatus.AWAITING_APPROVAL,
        )
        handle = temporal_client.get_workflow_handle(params.incident_id)
        denied = await handle.execute_update(
            "deny",
            DenyRequest(step_id="fallback:tsc-0001", principal=DORA, reason="false positive"),
            result_type=StepView,
        )
    assert denied.state is StepState.DENIED
    assert denied.denial is not None and denied.denial.principal == "dora"
    assert traffic_lab.write_count(1) == 0


@pytest.mark.parametrize(
    ("on_timeout", "expected"),
    [("deny", StepState.EXPIRED), ("approve", StepState.VERIFIED)],
)
async def test_approval_timeout_applies_on_timeout(
    temporal_client: Client, traffic_lab: TrafficLab, on_timeout: str, expected: StepState
):
    settings = make_settings(traffic_lab.port)
    gate = {"required": 1, "timeout_s": 1, "on_timeout": on_timeout}
    engine = ScriptedEngine([fallback_step("tsc-0002", approval=gate)])
    params = new_incident()
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: bool(v.steps) and v.steps[0].state is expected,
        )
    assert "approval.timeout" in [e.kind for e in view.audit]
    assert traffic_lab.write_count(2) == (1 if expected is StepState.VERIFIED else 0)


async def test_approval_timeout_with_escalate_keeps_waiting_and_escalates(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    gate = {"required": 1, "timeout_s": 1, "on_timeout": "escalate"}
    engine = ScriptedEngine([fallback_step("tsc-0002", approval=gate)])
    params = new_incident()
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        view = await wait_for(temporal_client, params.incident_id, lambda v: v.escalated)
        step = view.steps[0]
        assert step.state is StepState.AWAITING_APPROVAL
        # Escalated is its own state: nothing failed, a person must decide, late.
        assert view.status is IncidentStatus.ESCALATED
        assert step.overdue_since is not None and step.approval_deadline is None
        timeout = next(e for e in view.audit if e.kind == "approval.timeout")
        assert step.overdue_since <= timeout.at
        await approve(temporal_client, params.incident_id, ALICE, "fallback:tsc-0002")
        after = await wait_for(
            temporal_client, params.incident_id, lambda v: v.steps[0].state is StepState.VERIFIED
        )
    assert after.steps[0].overdue_since == step.overdue_since, "it stays marked as late"
    # Decided, late: the incident shows its steps again; the escalation stays on record.
    assert after.status is IncidentStatus.CONTAINED
    assert after.escalated and any("nobody approved it in time" in e for e in after.escalations)


async def release_step(
    client: Client, incident_id: str, step: str, who: Principal = DORA
) -> StepView:
    handle = client.get_workflow_handle(incident_id)
    request = ReleaseStepRequest(step_id=step, principal=who, reason="host cleaned")
    result: StepView = await handle.execute_update(
        IncidentUpdate.RELEASE_STEP, request, result_type=StepView
    )
    return result


async def release_step_refused(client: Client, incident_id: str, step: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await release_step(client, incident_id, step)
    return str(caught.value.cause)


async def test_one_step_is_released_on_its_own_and_the_rest_stays(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine(
        [
            fallback_step("tsc-0001"),
            fallback_step("tsc-0002"),
            fallback_step("tsc-0003", reversible=False),
            fallback_step("tsc-0004", approval=GATED),
        ]
    )
    params = new_incident()
    incident = params.incident_id
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            incident,
            lambda v: sum(s.state is StepState.VERIFIED for s in v.steps) == 3,
        )
        released = await release_step(temporal_client, incident, "fallback:tsc-0001")
        assert released.state is StepState.ROLLED_BACK
        irreversible = await release_step_refused(temporal_client, incident, "fallback:tsc-0003")
        waiting = await release_step_refused(temporal_client, incident, "fallback:tsc-0004")
        again = await release_step_refused(temporal_client, incident, "fallback:tsc-0001")
        unknown = await release_step_refused(temporal_client, incident, "no-such-step")
        view = await wait_for(temporal_client, incident, lambda v: True)
        assert await traffic_lab.read_mode(1) == MODE_NORMAL
        assert await traffic_lab.read_mode(2) == MODE_FLASH, "the other step still holds"
        assert traffic_lab.write_count(1) == 2 and traffic_lab.write_count(2) == 1
        await release_and_end(
            temporal_client, incident, ReleaseRequest(principal=DORA, reason="done")
        )
    assert state_of(view, "fallback:tsc-0002") is StepState.VERIFIED
    assert view.status is IncidentStatus.AWAITING_APPROVAL  # tsc-0004 still waits
    asked = next(e for e in view.audit if e.kind == "step.release_requested")
    assert asked.detail == {
        "step": "fallback:tsc-0001",
        "principal": "dora",
        "principal_id": DORA.id,
        "reason": "host cleaned",
    }
    assert "cannot be undone" in irreversible
    assert "deny it instead" in waiting
    assert "rolled_back and holds nothing" in again
    assert "no step" in unknown


async def test_lease_expiry_reverts_the_change_on_the_target(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0003", lease_s=2)])
    params = new_incident()
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
        assert await traffic_lab.read_mode(3) == MODE_FLASH
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.steps[0].state is StepState.ROLLED_BACK
        )
    assert await traffic_lab.read_mode(3) == MODE_NORMAL
    assert "lease.expired" in [e.kind for e in view.audit]
    assert traffic_lab.write_count(3) == 2  # apply, then revert: nothing more


async def test_extend_pushes_the_lease_out(temporal_client: Client, traffic_lab: TrafficLab):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0004", lease_s=2)])
    params = new_incident()
    step = "fallback:tsc-0004"
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        before = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
        handle = temporal_client.get_workflow_handle(params.incident_id)
        extended = await handle.execute_update(
            "extend",
            ExtendRequest(step_id=step, principal=ALICE, lease_s=60),
            result_type=StepView,
        )
        await asyncio.sleep(3)  # past the original lease (its timer has fired by now)
        # A workflow task after that moment: had the old deadline held, this one would
        # have reverted the step. A duplicate finding makes one and is seen to be done.
        await send(temporal_client, settings, params, webhook_id="after-the-old-lease")
        await send(temporal_client, settings, params, webhook_id="after-the-old-lease")
        view = await wait_for(temporal_client, params.incident_id, lambda v: v.duplicates >= 1)
    assert extended.lease_expires_at is not None
    assert extended.lease_expires_at > (before.steps[0].lease_expires_at or "")
    assert view.steps[0].state is StepState.VERIFIED
    assert await traffic_lab.read_mode(4) == MODE_FLASH


async def test_release_reverts_in_reverse_order_and_closes(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine(
        [
            fallback_step("tsc-0001"),
            fallback_step("tsc-0002"),
            fallback_step("tsc-0003", approval=GATED),
            fallback_step("tsc-0004", reversible=False),
        ]
    )
    params = new_incident()
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: sum(s.state is StepState.VERIFIED for s in v.steps) == 3,
        )
        final = await release_and_end(
            temporal_client,
            params.incident_id,
            ReleaseRequest(principal=DORA, reason="threat removed"),
        )
        released = final
    assert released.status is IncidentStatus.RELEASED
    assert final.status is IncidentStatus.RELEASED
    applied_order = sorted(
        (s for s in released.steps if s.applied_seq), key=lambda s: s.applied_seq or 0
    )
    rolled = [e.detail["step"] for e in released.audit if e.kind == "step.rolled_back"]
    assert rolled == [s.id for s in reversed(applied_order) if s.reversible]
    assert state_of(released, "fallback:tsc-0003") is StepState.DENIED
    # An irreversible step stays as it is and is listed as such.
    assert state_of(released, "fallback:tsc-0004") is StepState.VERIFIED
    irreversible = [e.detail["step"] for e in released.audit if e.kind == "release.irreversible"]
    assert irreversible == ["fallback:tsc-0004"]
    assert released.steps[3].lease_expires_at is None, "no lease on what cannot be undone"
    assert await traffic_lab.read_mode(1) == MODE_NORMAL
    assert await traffic_lab.read_mode(2) == MODE_NORMAL
    assert traffic_lab.write_count(3) == 0
