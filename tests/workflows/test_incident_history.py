"""Incidents keep their history (#15 item 8): a released incident stays listed and
readable; the entity's next incident gets a new id linked to the earlier one; an action
meant for an earlier incident is refused; zones and the essential flag come from the
inventory; an incident whose findings the SIEM closed shows as closed.

Real Temporal dev server and lab controller; the decision is scripted (one step).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from harness import api_client, make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import ScriptedEngine, fallback_step, finding, scripted_activities, send

from contracts.findings import ActivityId
from contracts.incident import IncidentParams, IncidentStatus
from orchestrator.cli import render
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, TrafficLab
from orchestrator.responders.principals import PrincipalStore

DEADLINE_S = 60.0


def entity_incident() -> IncidentParams:
    entity = f"history-{uuid.uuid4().hex[:8]}"
    return IncidentParams(incident_id=f"inc-{entity}", entity=entity)


def responder(settings: Any) -> dict[str, str]:
    token = PrincipalStore(settings.principals_path).add("rita", ["responder"])
    return {"Authorization": f"Bearer {token}"}


async def listed(http: httpx.AsyncClient, query: str, wanted: set[str]) -> dict[str, Any]:
    """Rows of the list once every wanted id shows (visibility is eventually consistent)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        response = await http.get(f"/v1/incidents?limit=200{query}")
        assert response.status_code == 200, response.text
        rows = {r["incident_id"]: r for r in response.json()["incidents"]}
        if wanted <= rows.keys() or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.3)


async def test_a_released_incident_stays_and_the_next_one_is_new_and_linked(
    temporal_client: Client, traffic_lab: TrafficLab, capsys: Any
):
    settings = make_settings(traffic_lab.port)
    activities = scripted_activities(settings, ScriptedEngine([fallback_step("tsc-0001")]))
    params = entity_incident()
    first, second = params.incident_id, f"{params.incident_id}@2"
    who = responder(settings)
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        await send(temporal_client, settings, params)
        await wait_for(temporal_client, first, lambda v: v.status is IncidentStatus.CONTAINED)
        released = await http.post(
            f"/v1/incidents/{first}/release", json={"reason": "all clear"}, headers=who
        )
        assert released.status_code == 200, released.text
        assert await traffic_lab.read_mode(1) == MODE_NORMAL
        # Released, it is still listed and readable, with its history.
        rows = await listed(http, "&status=released", {first})
        assert rows[first]["status"] == "released"
        shown = (await http.get(f"/v1/incidents/{first}")).json()
        assert shown["status"] == "released"
        assert "incident.released" in [e["kind"] for e in shown["audit"]]

        # The entity is seen again: a new incident, with a new id that links the first.
        await send(temporal_client, settings, params, finding())
        now = await wait_for(
            temporal_client, first, lambda v: v.incident_id == second and bool(v.steps)
        )
        assert now.earlier == [first]
        await wait_for(temporal_client, first, lambda v: v.status is IncidentStatus.CONTAINED)
        assert await traffic_lab.read_mode(1) == MODE_FLASH
        rows = await listed(http, "", {first, second})
        assert rows[first]["status"] == "released"
        assert rows[second]["status"] == "contained"
        current = (await http.get(f"/v1/incidents/{second}")).json()
        by_key = (await http.get(f"/v1/incidents/{first}")).json()
        earlier = (await http.get(f"/v1/incidents/{first}@1")).json()
        assert current["incident_id"] == by_key["incident_id"] == second
        assert current["earlier"] == [first]
        assert earlier["incident_id"] == first
        assert earlier["status"] == "released"
        assert [s["state"] for s in earlier["steps"]] == ["rolled_back"]
        missing = await http.get(f"/v1/incidents/{first}@9")
        assert missing.status_code == 404
        # An action meant for the earlier incident never touches the current one.
        stale = await http.post(
            f"/v1/incidents/{first}@1/release", json={"reason": "old tab"}, headers=who
        )
        assert stale.status_code == 409, stale.text
        assert "not this entity's current incident" in stale.json()["detail"]
        assert await traffic_lab.read_mode(1) == MODE_FLASH
        done = await http.post(
            f"/v1/incidents/{second}/release", json={"reason": "clear again"}, headers=who
        )
        assert done.status_code == 200, done.text
    render.incident_detail(current)
    assert f"earlier incidents of {params.entity}: {first}" in capsys.readouterr().out


async def test_zones_and_the_essential_flag_come_from_the_inventory(temporal_client: Client):
    """The substation finding names only the asset; the inventory puts it in `energy`,
    an essential zone, so `--zone energy` finds it and the row says it is essential."""
    settings = make_settings(1)
    activities = scripted_activities(settings, ScriptedEngine([]))
    params = entity_incident()
    document = finding().model_dump(mode="json")
    document["resources"] = [{"uid": params.entity}, {"uid": "rtu-e01"}]
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        await send(temporal_client, settings, params, type(finding()).model_validate(document))
        rows = await listed(http, "&zone=energy", {params.incident_id})
    row = rows[params.incident_id]
    assert "energy" in row["zones"]
    assert row["essential"] is True


async def test_an_incident_whose_findings_the_siem_closed_shows_as_closed(
    temporal_client: Client,
):
    settings = make_settings(1)
    activities = scripted_activities(settings, ScriptedEngine([]))
    params = entity_incident()
    opened = finding("det-closing")
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        await send(temporal_client, settings, params, opened)
        await wait_for(temporal_client, params.incident_id, lambda v: v.decision is not None)
        closing = opened.model_copy(update={"activity_id": ActivityId.CLOSE, "time": 1})
        await send(temporal_client, settings, params, closing)
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CLOSED
        )
        rows = await listed(http, "&status=closed", {params.incident_id})
    assert view.findings[0].activity_id is ActivityId.CLOSE
    assert rows[params.incident_id]["status"] == "closed"
