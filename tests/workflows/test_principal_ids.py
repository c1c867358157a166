"""Four-eyes counts identities, not display names, on the real dev server.

An IdP subject keeps its id (`oidc:<issuer>#<sub>`) whatever name its token shows, and
two people who share a display name are still two approvers; local principals live in
their own namespace (`local:<name>`). Approvals recorded before ids existed count as the
local principal of their name.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness import make_settings, running_worker, wait_for
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from workflow_fakes import FakeModbusAdapter, ScriptedEngine, fallback_step, new_incident, send

from contracts.incident import (
    ApproveRequest,
    IncidentParams,
    IncidentStatus,
    Principal,
    StepState,
    StepView,
)
from contracts.names import IncidentUpdate
from orchestrator.activities import ContainmentActivities
from orchestrator.config import Settings
from orchestrator.wiring.inventory import Inventory

ISSUER = "https://idp.city.test/realms/ops"
STEP = "fallback:tsc-0001"
TWO_APPROVERS = {"required": 2, "roles": ["responder"], "timeout_s": 600}


def oidc(subject: str, name: str) -> Principal:
    return Principal(id=f"oidc:{ISSUER}#{subject}", name=name, roles=["responder"])


def local(name: str) -> Principal:
    return Principal(id=f"local:{name}", name=name, roles=["responder"])


def activities(settings: Settings) -> ContainmentActivities:
    engine = ScriptedEngine([fallback_step("tsc-0001", approval=TWO_APPROVERS)])
    return ContainmentActivities(
        engine, Inventory.load(settings.policy_dir), {"modbus": FakeModbusAdapter()}
    )


async def awaiting(client: Client, settings: Settings) -> IncidentParams:
    params = new_incident()
    await send(client, settings, params)
    await wait_for(
        client, params.incident_id, lambda v: v.status is IncidentStatus.AWAITING_APPROVAL
    )
    return params


async def approve(client: Client, incident_id: str, request: Any) -> StepView:
    handle = client.get_workflow_handle(incident_id)
    result: StepView = await handle.execute_update(
        IncidentUpdate.APPROVE, request, result_type=StepView
    )
    return result


def request(who: Principal) -> ApproveRequest:
    return ApproveRequest(step_id=STEP, principal=who, reason="checked with the field team")


async def refusal(client: Client, incident_id: str, who: Principal) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await approve(client, incident_id, request(who))
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_one_subject_under_two_display_names_approves_only_once(temporal_client: Client):
    """The probe's case: a token with preferred_username, then one without (name = sub)."""
    settings = make_settings(1)
    async with running_worker(temporal_client, settings, activities(settings)):
        params = await awaiting(temporal_client, settings)
        first = await approve(temporal_client, params.incident_id, request(oidc("u-1", "olivia")))
        again = await refusal(temporal_client, params.incident_id, oidc("u-1", "u-1"))
        view = await wait_for(temporal_client, params.incident_id, lambda v: True)
    assert first.state is StepState.AWAITING_APPROVAL
    assert again.type == "Refused"
    assert "already approved" in again.message
    step = view.steps[0]
    assert step.state is StepState.AWAITING_APPROVAL, "one subject is one approval"
    assert [(a.principal, a.principal_id) for a in step.approvals] == [
        ("olivia", f"oidc:{ISSUER}#u-1")
    ]
    approval_entry = next(e for e in view.audit if e.kind == "step.approval")
    assert approval_entry.detail["principal_id"] == f"oidc:{ISSUER}#u-1"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (oidc("u-1", "sam"), oidc("u-2", "sam")),
        (local("duty1"), oidc("duty1", "duty1")),
    ],
    ids=["two-subjects-one-name", "local-and-idp-user-of-one-name"],
)
async def test_distinct_identities_sharing_a_display_name_both_count(
    temporal_client: Client, first: Principal, second: Principal
):
    settings = make_settings(1)
    async with running_worker(temporal_client, settings, activities(settings)):
        params = await awaiting(temporal_client, settings)
        await approve(temporal_client, params.incident_id, request(first))
        await approve(temporal_client, params.incident_id, request(second))
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: v.steps[0].state is StepState.VERIFIED,
        )
    assert [a.principal_id for a in view.steps[0].approvals] == [first.id, second.id]


async def test_an_approval_sent_without_an_id_is_the_local_principal_of_its_name(
    temporal_client: Client,
):
    """What clients and histories from before ids send: `principal` has a name only."""
    settings = make_settings(1)
    old_shape = {
        "step_id": STEP,
        "principal": {"name": "alice", "roles": ["responder"]},
        "reason": "sent by an older API process",
    }
    async with running_worker(temporal_client, settings, activities(settings)):
        params = await awaiting(temporal_client, settings)
        recorded = await approve(temporal_client, params.incident_id, old_shape)
        again = await refusal(temporal_client, params.incident_id, local("alice"))
        await approve(temporal_client, params.incident_id, request(oidc("alice", "alice")))
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: v.steps[0].state is StepState.VERIFIED,
        )
    assert recorded.approvals[0].principal_id == "local:alice"
    assert again.type == "Refused" and "already approved" in again.message
    assert [a.principal_id for a in view.steps[0].approvals] == [
        "local:alice",
        f"oidc:{ISSUER}#alice",
    ]
