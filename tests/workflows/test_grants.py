"""Approvals carry an authorization only the API can make (#16 item 3).

The probe: a client that reached Temporal directly (no API, no token) approved a step as
`ghost-a` and `ghost-b`. These tests send Updates with a plain client (the shared test
client signs like the API; `unsigned_client` does not) and check that a missing, forged,
mismatched, reused or expired grant is refused with its reason in the audit, and that the
API's own grant (through HTTP, with the plain client) is accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from grant_signing import TEST_APPROVAL_KEY
from harness import api_client, make_settings, running_worker, wait_for
from temporalio.client import Client, WorkflowUpdateFailedError
from workflow_fakes import ScriptedEngine, fallback_step, new_incident, scripted_activities, send

from contracts.incident import (
    ApproveRequest,
    ExtendRequest,
    Grant,
    IncidentView,
    Principal,
    StepState,
)
from contracts.names import IncidentUpdate
from orchestrator.lab.traffic import MODE_FLASH, TrafficLab
from orchestrator.responders import grants
from orchestrator.responders.principals import PrincipalStore

STEP = "fallback:tsc-0001"
ONE = {"required": 1, "timeout_s": 3600}
KEY = TEST_APPROVAL_KEY.get_secret_value().encode()
GHOST = Principal(id="local:ghost-a", name="ghost-a", roles=["duty-officer"])


def waiting(view: IncidentView) -> bool:
    return bool(view.steps) and view.steps[0].state is StepState.AWAITING_APPROVAL


def grant_for(incident_id: str, step_id: str, action: str, **changes: Any) -> Grant:
    grant = grants.issue(
        KEY,
        incident_id=incident_id,
        step_id=step_id,
        action=action,
        principal_id=GHOST.id,
        decision_id="d-1",
    )
    return grant.model_copy(update=changes)


async def refused(client: Client, incident_id: str, name: str, request: Any) -> str:
    handle = client.get_workflow_handle(incident_id)
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(name, request, result_type=IncidentView)
    return str(failure.value.cause)


async def test_a_direct_temporal_approval_without_the_apis_grant_is_refused(
    temporal_client: Client, unsigned_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0001", approval=ONE)])
    params = new_incident()
    incident = params.incident_id
    approve = ApproveRequest(step_id=STEP, principal=GHOST, reason="ghost")
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        await wait_for(temporal_client, incident, waiting)
        unsigned = await refused(unsigned_client, incident, "approve", approve)
        forged = approve.model_copy(
            update={"grant": grant_for(incident, STEP, "approve", mac="0" * 64)}
        )
        bad_mac = await refused(unsigned_client, incident, "approve", forged)
        elsewhere = approve.model_copy(
            update={"grant": grant_for(incident, "fallback:tsc-0002", "approve")}
        )
        wrong_step = await refused(unsigned_client, incident, "approve", elsewhere)
        past = grants.issue(
            KEY,
            incident_id=incident,
            step_id=STEP,
            action="approve",
            principal_id=GHOST.id,
            decision_id="d-2",
            now=datetime.now(UTC) - timedelta(hours=1),
        )
        expired = await refused(
            unsigned_client, incident, "approve", approve.model_copy(update={"grant": past})
        )
        view = await wait_for(temporal_client, incident, waiting)
    assert "no authorization from the Bulkhead API" in unsigned
    assert "does not verify" in bad_mac
    assert "is for step 'fallback:tsc-0002'" in wrong_step
    assert "expired" in expired
    assert view.steps[0].approvals == [], "nothing was approved"
    refusals = [e for e in view.audit if e.kind == "authorization.refused"]
    assert len(refusals) == 4
    assert {e.detail["principal"] for e in refusals} == {"ghost-a"}
    assert traffic_lab.write_count(1) == 0


async def test_a_grant_is_used_once(
    temporal_client: Client, unsigned_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0001")])
    params = new_incident()
    incident = params.incident_id
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            incident,
            lambda v: bool(v.steps) and v.steps[0].state is StepState.VERIFIED,
        )
        extend = ExtendRequest(
            step_id=STEP,
            principal=GHOST,
            lease_s=60,
            grant=grant_for(incident, STEP, "extend"),
        )
        handle = unsigned_client.get_workflow_handle(incident)
        first = await handle.execute_update(IncidentUpdate.EXTEND, extend)
        again = await refused(unsigned_client, incident, "extend", extend)
    assert first is not None
    assert "already used" in again


async def test_the_apis_own_grant_is_accepted_without_any_signing_client(
    unsigned_client: Client, traffic_lab: TrafficLab
):
    """Through HTTP with a plain Temporal client: the API made the grant itself."""
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0001", approval=ONE)])
    activities = scripted_activities(settings, engine)
    params = new_incident()
    token = PrincipalStore(settings.principals_path).add("rita", ["responder"])
    async with (
        running_worker(unsigned_client, settings, activities),
        api_client(unsigned_client, settings, activities) as http,
    ):
        await send(unsigned_client, settings, params)
        await wait_for(unsigned_client, params.incident_id, waiting)
        approved = await http.post(
            f"/v1/incidents/{params.incident_id}/steps/{STEP}/approve",
            json={"reason": "seen it"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert approved.status_code == 200, approved.text
        await wait_for(
            unsigned_client,
            params.incident_id,
            lambda v: bool(v.steps) and v.steps[0].state is StepState.VERIFIED,
        )
    assert await traffic_lab.read_mode(1) == MODE_FLASH
