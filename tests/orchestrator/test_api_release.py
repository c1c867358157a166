"""Release says what it will undo before it runs and what it undid after; one step can be
released on its own; a late approval takes the role the step was escalated to.

Real dev server, real lab controllers over Modbus, the shipped approval policy in Rego;
decisions come from a scripted engine so the tests choose the steps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from harness import api_client, make_settings, running_worker, serving, wait_for
from temporalio.client import Client
from workflow_fakes import ScriptedEngine, fallback_step, new_incident, scripted_activities, send

from contracts.incident import IncidentStatus, StepState
from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.cli.main import main
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, TrafficLab
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.responders.principals import PrincipalStore

PROBLEM = "application/problem+json"
GATED = {"required": 1, "timeout_s": 600}


@pytest.fixture(scope="module")
def rego() -> EmbeddedEngine:
    return EmbeddedEngine(DEFAULT_POLICY_DIR)


def tokens(settings: Any) -> dict[str, str]:
    store = PrincipalStore(settings.principals_path)
    people = {"alice": ["responder"], "dora": ["duty-officer"], "vic": ["viewer"]}
    return {name: store.add(name, roles) for name, roles in people.items()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ids(undos: list[dict[str, Any]]) -> list[str]:
    return [u["step_id"] for u in undos]


async def test_release_previews_and_reports_and_one_step_goes_on_its_own(
    temporal_client: Client, traffic_lab: TrafficLab, rego: EmbeddedEngine
):
    settings = make_settings(traffic_lab.port)
    who = tokens(settings)
    engine = ScriptedEngine(
        [
            fallback_step("tsc-0001"),
            fallback_step("tsc-0002", reversible=False),
            fallback_step("tsc-0003", approval=GATED),
            fallback_step("tsc-0004"),
        ]
    )
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
            lambda v: sum(s.state is StepState.VERIFIED for s in v.steps) == 3,
        )
        before = (await http.get(base)).json()
        whole = (await http.get(f"{base}/release-preview")).json()
        one = await http.get(f"{base}/release-preview", params={"step": "fallback:tsc-0001"})
        unknown = await http.get(f"{base}/release-preview", params={"step": "nope"})
        viewer = await http.post(
            f"{base}/steps/fallback:tsc-0001/release",
            json={"reason": "clean"},
            headers=bearer(who["vic"]),
        )
        released = await http.post(
            f"{base}/steps/fallback:tsc-0001/release",
            json={"reason": "host rebuilt"},
            headers=bearer(who["alice"]),
        )
        assert await traffic_lab.read_mode(1) == MODE_NORMAL
        assert await traffic_lab.read_mode(4) == MODE_FLASH, "the other steps still hold"
        stays = await http.post(
            f"{base}/steps/fallback:tsc-0002/release",
            json={"reason": "try"},
            headers=bearer(who["alice"]),
        )
        after_one = (await http.get(base)).json()
        final = await http.post(
            f"{base}/release", json={"reason": "threat gone"}, headers=bearer(who["dora"])
        )
    # Before: the newest applied first, the irreversible step stays, the gate is cancelled.
    # The three steps apply concurrently, so which came last is read from the incident.
    applied = {s["id"]: s["applied_seq"] for s in before["steps"] if s["applied_seq"]}
    oldest_first = sorted(["fallback:tsc-0001", "fallback:tsc-0004"], key=applied.__getitem__)
    assert ids(whole["reverts"]) == oldest_first[::-1]
    assert ids(whole["stays"]) == ["fallback:tsc-0002"]
    assert ids(whole["cancels"]) == ["fallback:tsc-0003"]
    assert whole["quarantines"] == []
    assert whole["summary"] == (
        "undoes 2 steps; 1 irreversible step stays; 1 waiting step is cancelled"
    )
    assert one.status_code == 200
    assert ids(one.json()["reverts"]) == ["fallback:tsc-0001"] and one.json()["cancels"] == []
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    assert "nope" in unknown.json()["detail"]
    # One step: the viewer may not; a responder may; the rest stays as it was.
    assert viewer.status_code == 403
    assert released.status_code == 200, released.text
    assert released.json()["state"] == "rolled_back"
    assert ids(released.json()["release_report"]["reverted"]) == ["fallback:tsc-0001"]
    assert stays.status_code == 409 and "cannot be undone" in stays.json()["detail"]
    states = {s["id"]: s["state"] for s in after_one["steps"]}
    assert states["fallback:tsc-0004"] == "verified"
    assert after_one["status"] == "awaiting_approval"
    # After: what the whole release reverted, what stayed, what was cancelled.
    assert final.status_code == 200, final.text
    report = final.json()["release_report"]
    assert ids(report["reverted"]) == ["fallback:tsc-0004"]
    assert report["not_reverted"] == []
    assert ids(report["stayed"]) == ["fallback:tsc-0002"]
    assert [(u["step_id"], u["state"]) for u in report["cancelled"]] == [
        ("fallback:tsc-0003", "denied")
    ]
    assert report["summary"] == "reverted 1 step; 1 irreversible step stayed"
    assert await traffic_lab.read_mode(4) == MODE_NORMAL


async def recent_in_city(http: httpx.AsyncClient, incident_id: str) -> str | None:
    """The incident's status among the city picture's recent incidents, once listed there
    (the list is read from visibility, which catches up within a moment)."""
    for _ in range(50):
        picture = await http.get("/v1/city")
        assert picture.status_code == 200, picture.text
        recent = {r["incident_id"]: r["status"] for r in picture.json()["recent"]}
        if incident_id in recent:
            return recent[incident_id]
        await asyncio.sleep(0.1)
    return None


async def test_a_late_approval_needs_the_duty_officer_it_was_escalated_to(
    temporal_client: Client, traffic_lab: TrafficLab, rego: EmbeddedEngine
):
    settings = make_settings(traffic_lab.port)
    who = tokens(settings)
    late = {"required": 1, "timeout_s": 1, "on_timeout": "escalate"}
    engine = ScriptedEngine([fallback_step("tsc-0002", approval=late)])
    activities = scripted_activities(settings, engine)
    params = new_incident()
    step = f"/v1/incidents/{params.incident_id}/steps/fallback:tsc-0002"
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities, rego) as http,
    ):
        await send(temporal_client, settings, params)
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.ESCALATED
        )
        recent = await recent_in_city(http, params.incident_id)
        responder = await http.post(
            f"{step}/approve", json={"reason": "ok"}, headers=bearer(who["alice"])
        )
        duty = await http.post(
            f"{step}/approve", json={"reason": "late, but right"}, headers=bearer(who["dora"])
        )
        done = await wait_for(
            temporal_client, params.incident_id, lambda v: v.steps[0].state is StepState.VERIFIED
        )
    assert view.steps[0].overdue_since is not None
    assert recent == "escalated"  # the "right now" view lists it among recent incidents
    assert responder.status_code == 403
    assert "overdue" in responder.json()["detail"] and "duty-officer" in responder.json()["detail"]
    assert duty.status_code == 200, duty.text
    assert done.steps[0].approvals[0].principal == "dora"
    assert traffic_lab.write_count(2) == 1


async def test_the_cli_previews_a_step_release_and_reports_it(
    temporal_client: Client,
    traffic_lab: TrafficLab,
    rego: EmbeddedEngine,
    capsys: pytest.CaptureFixture[str],
):
    settings = make_settings(traffic_lab.port)
    who = tokens(settings)
    engine = ScriptedEngine([fallback_step("tsc-0001"), fallback_step("tsc-0003")])
    activities = scripted_activities(settings, engine)
    params = new_incident()
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    app = create_app(build_context(settings, temporal_client, rego, secret))
    async with running_worker(temporal_client, settings, activities), serving(app) as url:
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: all(s.state is StepState.VERIFIED for s in v.steps) and len(v.steps) == 2,
        )
        argv = [
            "release",
            params.incident_id,
            "--step",
            "fallback:tsc-0003",
            "--reason",
            "controller reflashed",
            "--api-url",
            url,
            "--token",
            who["alice"],
        ]
        code = await asyncio.to_thread(main, argv)
        modes = [await traffic_lab.read_mode(1), await traffic_lab.read_mode(3)]
    printed = capsys.readouterr().out.splitlines()
    # The worker in this process logs to stdout too: the command's output starts here.
    out = printed[next(i for i, line in enumerate(printed) if line.startswith("release ")) :]
    out = [line for line in out if " [info " not in line]
    assert code == 0
    assert out[0] == f"release {params.incident_id} step fallback:tsc-0003: undoes 1 step"
    assert out[1:3] == [
        "will be undone, newest first:",
        "  fallback:tsc-0003: set tsc-0003 to flash; was normal",
    ]
    assert out[3:] == ["released: reverted 1 step", "reverted:", out[5]]
    assert out[5].startswith("  fallback:tsc-0003")
    assert modes == [MODE_FLASH, MODE_NORMAL]
