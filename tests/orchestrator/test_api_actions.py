"""Responder actions over HTTP: bearer tokens, the real approval policy, workflow updates.

Decisions come from a scripted engine so the tests choose the gates; authorization is
the shipped Rego (`data.bulkhead.approval.allow`) in the embedded engine.
"""

from __future__ import annotations

import pytest
from harness import api_client, make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import ScriptedEngine, fallback_step, new_incident, scripted_activities, send

from contracts.incident import IncidentStatus, StepState
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, TrafficLab
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.responders.principals import PrincipalStore
from orchestrator.temporal.city import TemporalCity

PROBLEM = "application/problem+json"
GATED = {
    "required": 2,
    "roles": ["responder", "duty-officer"],
    "must_include_roles": ["duty-officer"],
    "timeout_s": 600,
}
STEP = "fallback:tsc-0001"


@pytest.fixture(scope="module")
def rego() -> EmbeddedEngine:
    return EmbeddedEngine(DEFAULT_POLICY_DIR)


def tokens(settings) -> dict[str, dict[str, str]]:
    store = PrincipalStore(settings.principals_path)
    people = {
        "alice": ["responder"],
        "bob": ["responder"],
        "dora": ["duty-officer"],
        "vic": ["viewer"],
    }
    return {
        name: {"Authorization": f"Bearer {store.add(name, roles)}"}
        for name, roles in people.items()
    }


async def test_actions_need_a_valid_bearer_token(temporal_client: Client, rego):
    settings = make_settings(1)
    async with api_client(temporal_client, settings, None, rego, anonymous=True) as http:
        missing = await http.post(
            f"/v1/incidents/inc-x/steps/{STEP}/approve", json={"reason": "ok"}
        )
        wrong = await http.post(
            f"/v1/incidents/inc-x/steps/{STEP}/approve",
            json={"reason": "ok"},
            headers={"Authorization": "Bearer nope"},
        )
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["content-type"] == PROBLEM
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "unknown or revoked" in wrong.json()["detail"]


async def test_four_eyes_over_http_with_the_real_approval_policy(
    temporal_client: Client, traffic_lab: TrafficLab, rego
):
    settings = make_settings(traffic_lab.port)
    who = tokens(settings)
    engine = ScriptedEngine([fallback_step("tsc-0001", approval=GATED)])
    activities = scripted_activities(settings, engine)
    params = new_incident()
    base = f"/v1/incidents/{params.incident_id}/steps/{STEP}"
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities, rego) as http,
    ):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: v.status is IncidentStatus.AWAITING_APPROVAL,
        )
        viewer = await http.post(f"{base}/approve", json={"reason": "lgtm"}, headers=who["vic"])
        no_reason = await http.post(f"{base}/approve", json={}, headers=who["alice"])
        first = await http.post(f"{base}/approve", json={"reason": "seen it"}, headers=who["alice"])
        twice = await http.post(f"{base}/approve", json={"reason": "again"}, headers=who["alice"])
        assert traffic_lab.write_count(1) == 0
        second = await http.post(
            f"{base}/approve", json={"reason": "duty officer ok"}, headers=who["dora"]
        )
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.steps[0].state is StepState.VERIFIED
        )
        shown = (await http.get(f"/v1/incidents/{params.incident_id}")).json()
    assert viewer.status_code == 403
    assert viewer.headers["content-type"] == PROBLEM
    assert no_reason.status_code == 422
    assert first.status_code == 200, first.text
    assert first.json()["state"] == "awaiting_approval"
    assert twice.status_code in (403, 409)  # the policy or the workflow refuses it
    assert second.status_code == 200, second.text
    approvals = shown["steps"][0]["approvals"]
    assert [a["principal"] for a in approvals] == ["alice", "dora"]
    assert all(a["decision_id"] for a in approvals), "each approval records its authz decision"
    assert view.steps[0].approvals[1].roles == ["duty-officer"]
    assert await traffic_lab.read_mode(1) == MODE_FLASH


async def test_deny_extend_and_release_over_http(
    temporal_client: Client, traffic_lab: TrafficLab, rego
):
    settings = make_settings(traffic_lab.port)
    who = tokens(settings)
    engine = ScriptedEngine([fallback_step("tsc-0001"), fallback_step("tsc-0002", approval=GATED)])
    activities = scripted_activities(settings, engine)
    params = new_incident()
    base = f"/v1/incidents/{params.incident_id}"
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities, rego) as http,
    ):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: (
                v.status is IncidentStatus.AWAITING_APPROVAL
                and v.steps[0].state is StepState.VERIFIED
            ),
        )
        denied = await http.post(
            f"{base}/steps/fallback:tsc-0002/deny",
            json={"reason": "not needed"},
            headers=who["dora"],
        )
        extended = await http.post(
            f"{base}/steps/{STEP}/extend",
            json={"lease_s": 600, "reason": "keep"},
            headers=who["alice"],
        )
        missing = await http.post(
            f"{base}/steps/nope/extend", json={"lease_s": 5}, headers=who["alice"]
        )
        released = await http.post(
            f"{base}/release", json={"reason": "all clear"}, headers=who["alice"]
        )
        again = await http.post(f"{base}/release", json={"reason": "twice"}, headers=who["alice"])
    assert denied.status_code == 200 and denied.json()["state"] == "denied"
    assert extended.status_code == 200, extended.text
    assert missing.status_code == 404
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "released"
    assert again.status_code in (404, 409)
    assert await traffic_lab.read_mode(1) == MODE_NORMAL
    assert traffic_lab.write_count(2) == 0


async def test_pause_and_resume_need_a_duty_officer(temporal_client: Client, traffic_lab, rego):
    settings = make_settings(traffic_lab.port)
    who = tokens(settings)
    city = TemporalCity(temporal_client, settings)
    activities = scripted_activities(settings, ScriptedEngine([]), city)
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities, rego) as http,
    ):
        responder = await http.post(
            "/v1/automation/pause", json={"reason": "x"}, headers=who["alice"]
        )
        paused = await http.post(
            "/v1/automation/pause", json={"reason": "drill"}, headers=who["dora"]
        )
        state = await http.get("/v1/automation")
        resumed = await http.post(
            "/v1/automation/resume", json={"reason": "done"}, headers=who["dora"]
        )
    assert responder.status_code == 403
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert state.json()["paused"] is True and state.json()["changed_by"] == "dora"
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
