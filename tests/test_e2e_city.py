"""Issue #19, done when: `/v1/city/map.svg` shows the energy zone awaiting approval after
the substation example; the "right now" view shows a paused banner and per-zone
containment (`GET /v1/city`, the map, and `bulkhead status`).

Real pieces: the Temporal dev server, the worker and API wired as `bulkhead worker` and
`bulkhead api` wire them (build_activities, the shipped policy and inventory), the lab's
traffic controllers, substation and city services, the guard's own probes, and the
`bulkhead` command in a process of its own against the API under uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import free_port
from harness import api_client, example_finding, make_settings, running_worker, serving, wait_for
from temporalio.client import Client
from test_e2e_network import end_running
from webhook_helpers import post
from workflow_fakes import ScriptedEngine, fallback_step, new_incident, scripted_activities, send

from contracts.incident import IncidentStatus
from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.city import gather
from orchestrator.config import Settings
from orchestrator.lab.city import CITY_SERVICE_TOKEN_FILE
from orchestrator.lab.cityservice import CityServiceLab
from orchestrator.lab.secretfiles import write_secret
from orchestrator.lab.substation import SubstationLab
from orchestrator.lab.traffic import TrafficLab
from orchestrator.responders.principals import PrincipalStore
from orchestrator.responders.service import Responders
from orchestrator.temporal.city import TemporalCity
from orchestrator.temporal.client import connect
from orchestrator.wiring.worker import build_activities

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SUBSTATION = ROOT / "examples/findings/substation-rtu-writes.json"
SVG = "{http://www.w3.org/2000/svg}"
PROBLEM = "application/problem+json"


def duty_officer(settings: Settings) -> dict[str, str]:
    token = PrincipalStore(settings.principals_path).add("dora", ["duty-officer"])
    return {"Authorization": f"Bearer {token}"}


def controller_finding(asset: str) -> bytes:
    document = example_finding(
        finding_info={"uid": f"det-city-{uuid.uuid4().hex[:8]}", "title": f"{asset} writes"},
        resources=[{"uid": asset}],
        evidences=[],
        severity_id=4,
    )
    return json.dumps(document).encode()


def zone(picture: dict[str, Any], zone_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(z for z in picture["zones"] if z["id"] == zone_id)
    return found


async def city_when(
    http: httpx.AsyncClient, holds: Callable[[dict[str, Any]], bool], within_s: float = 20.0
) -> dict[str, Any]:
    """GET /v1/city until `holds` (the picture is read from visibility, a moment behind)."""
    deadline = time.monotonic() + within_s
    picture: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = await http.get("/v1/city")
        assert answer.status_code == 200, answer.text
        picture = answer.json()
        if holds(picture):
            return picture
        await asyncio.sleep(0.2)
    raise AssertionError(f"the city never showed it:\n{json.dumps(picture, indent=1)}")


async def map_of(http: httpx.AsyncClient) -> ET.Element:
    answer = await http.get("/v1/city/map.svg")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("image/svg+xml")
    return ET.fromstring(answer.text)  # noqa: S314 - our own API's answer, parsed to check it


def drawn_zone(root: ET.Element, zone_id: str) -> ET.Element:
    found = [g for g in root.iter(f"{SVG}g") if g.get("data-zone") == zone_id]
    assert len(found) == 1, f"zone {zone_id}: {len(found)} drawn"
    return found[0]


def words(element: ET.Element) -> list[str]:
    return ["".join(t.itertext()).strip() for t in element.iter(f"{SVG}text")]


def lease_lines(at: str, drawn_on: set[str]) -> set[str]:
    """What a map drawn on one of the `drawn_on` days says of a lease ending `at`: the time
    alone on the lease's own day, with its date on any other (orchestrator/city/draw.py).
    A test that runs in the last lease-length before midnight UTC sees the dated form."""
    moment = datetime.fromisoformat(at).astimezone(UTC)
    day, time_of_day = moment.strftime("%Y-%m-%d"), moment.strftime("%H:%M UTC")
    return {
        f"lease ends {time_of_day}" if drawn == day else f"lease ends {day} {time_of_day}"
        for drawn in drawn_on
    }


def today_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


async def test_the_substation_example_leaves_energy_awaiting_approval_on_the_map(
    temporal_client: Client,
):
    await end_running(temporal_client, "inc-rtu-e01")
    substation, services = SubstationLab(port=free_port()), CityServiceLab(port=free_port())
    await asyncio.gather(substation.start(), services.start())
    settings = make_settings(1, lab_opcua_port=substation.port, lab_http_port=services.port)
    write_secret(settings.lab_secrets_dir / CITY_SERVICE_TOKEN_FILE, services.token)
    activities = build_activities(settings)
    incident = "inc-rtu-e01"
    try:
        async with (
            running_worker(temporal_client, settings, activities),
            api_client(temporal_client, settings, activities) as http,
        ):
            await TemporalCity(temporal_client, settings).ensure()
            posted = await post(http, "generic", SUBSTATION.read_bytes(), settings)
            assert posted.status_code == 202, posted.text
            incident = str(posted.json()["findings"][0]["incident_id"])
            picture = await city_when(
                http, lambda p: zone(p, "energy")["state"] == "awaiting_approval"
            )
            root = await map_of(http)
    finally:
        await end_running(temporal_client, incident)
        await asyncio.gather(substation.stop(), services.stop())
    energy = zone(picture, "energy")
    assert energy["awaiting_approval"] == 1
    assert energy["contained"] == []
    assert energy["services"] == [
        {"id": "power-distribution", "healthy": True, "detail": energy["services"][0]["detail"]}
    ]
    waiting = picture["approvals"]["waiting"]
    assert [(w["incident_id"], w["step_id"], w["zone"]) for w in waiting] == [
        (incident, "fallback:rtu-e01", "energy")
    ]
    assert waiting[0]["approval_deadline"] and not waiting[0]["overdue"]
    assert picture["approvals"]["pending"] == 1
    assert zone(picture, "traffic")["state"] == "normal"
    assert picture["automation"]["paused"] is False
    assert picture["budget"] == {"used": 0, "max": 10}
    assert picture["unavailable"] == []
    drawn = drawn_zone(root, "energy")
    assert drawn.get("data-state") == "awaiting_approval"
    assert "◆ AWAITING APPROVAL (1)" in words(drawn)
    assert drawn_zone(root, "traffic").get("data-state") == "normal"


async def test_a_contained_controller_shows_in_its_zone_until_released(
    temporal_client: Client, traffic_lab: TrafficLab
):
    await end_running(temporal_client, "inc-tsc-0003")
    settings = make_settings(traffic_lab.port)
    activities = build_activities(settings)
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        await TemporalCity(temporal_client, settings).ensure()
        posted = await post(http, "generic", controller_finding("tsc-0003"), settings)
        incident = str(posted.json()["findings"][0]["incident_id"])
        view = await wait_for(
            temporal_client, incident, lambda v: v.status is IncidentStatus.CONTAINED
        )
        lease = str(view.steps[0].lease_expires_at)
        held = await city_when(http, lambda p: bool(zone(p, "traffic")["contained"]))
        drawn_on = {today_utc()}  # the map's day, read before and after it is drawn
        root = await map_of(http)
        drawn_on.add(today_utc())
        released = await http.post(
            f"/v1/incidents/{incident}/release",
            json={"reason": "controller reflashed"},
            headers=duty_officer(settings),
        )
        assert released.status_code == 200, released.text
        # The zone and budget come from the city record at once; the recent list from
        # visibility, a moment behind: wait for both.
        after = await city_when(
            http,
            lambda p: (
                zone(p, "traffic")["state"] == "normal"
                and p["budget"]["used"] == 0
                and incident in [r["incident_id"] for r in p["recent"]]
            ),
        )
        root_after = await map_of(http)
    traffic = zone(held, "traffic")
    assert traffic["state"] == "contained" and traffic["states"] == ["contained"]
    [step] = traffic["contained"]
    assert (step["incident_id"], step["step_id"], step["target"]) == (
        incident,
        "fallback:tsc-0003",
        "tsc-0003",
    )
    assert step["lease_expires_at"] == lease
    assert step["since"] is not None and step["automatic"] is True
    assert held["budget"] == {"used": 1, "max": 10}
    lines = words(drawn_zone(root, "traffic"))
    assert drawn_zone(root, "traffic").get("data-state") == "contained"
    at = lines.index("fallback:tsc-0003 (tsc-0003)")
    assert lines[at + 1] in lease_lines(lease, drawn_on)
    assert zone(after, "traffic")["contained"] == []
    assert drawn_zone(root_after, "traffic").get("data-state") == "normal"
    assert incident in [r["incident_id"] for r in after["recent"] if r["status"] == "released"]


async def run_status(url: str, token: str, *flags: str) -> tuple[int, str, str]:
    """`bulkhead status` in a process of its own, as an operator runs it (piped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKHEAD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orchestrator.cli.main",
        "status",
        "--api-url",
        url,
        "--token",
        token,
        *flags,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_pause_shows_a_banner_and_status_prints_the_city_in_100_columns(
    temporal_client: Client, traffic_lab: TrafficLab
):
    await end_running(temporal_client, "inc-tsc-0004")
    settings = make_settings(traffic_lab.port)
    activities = build_activities(settings)
    dora = duty_officer(settings)
    viewer = PrincipalStore(settings.principals_path).add("vic", ["viewer"])
    secret = settings.webhook_secret.get_secret_value()
    context = build_context(settings, temporal_client, activities.engine, secret)
    async with (
        running_worker(temporal_client, settings, activities),
        serving(create_app(context)) as url,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {viewer}"}) as http,
    ):
        await TemporalCity(temporal_client, settings).ensure()
        posted = await post(http, "generic", controller_finding("tsc-0004"), settings)
        incident = str(posted.json()["findings"][0]["incident_id"])
        await city_when(http, lambda p: bool(zone(p, "traffic")["contained"]))
        paused = await http.post(
            "/v1/automation/pause", json={"reason": "storm drill"}, headers=dora
        )
        assert paused.status_code == 200, paused.text
        picture = (await http.get("/v1/city")).json()
        root = await map_of(http)
        code, out, err = await run_status(url, viewer)
        json_code, as_json, _ = await run_status(url, viewer, "--json")
        await http.post("/v1/automation/resume", json={"reason": "drill over"}, headers=dora)
        await end_running(temporal_client, incident)
    assert picture["automation"]["paused"] is True
    assert (picture["automation"]["changed_by"], picture["automation"]["reason"]) == (
        "dora",
        "storm drill",
    )
    banner = next(g for g in root.iter(f"{SVG}g") if g.get("id") == "banner")
    assert "AUTOMATION PAUSED by dora" in words(banner)[0]
    assert "storm drill" in words(banner)[0]
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100, "\n".join(lines)
    assert any(line.startswith(" AUTOMATION PAUSED  by dora") for line in lines), out
    assert "storm drill" in out
    assert "Blast-radius budget: 1 of 10 automatic containments" in out
    contained = next(line for line in lines if "fallback:tsc-0004" in line)
    assert "traffic" in contained and "lease ends in 60 min," in contained, out
    assert json_code == 0 and json.loads(as_json)["automation"]["changed_by"] == "dora"


async def test_an_essential_service_down_marks_its_zone_unhealthy(temporal_client: Client):
    port = free_port()  # nothing listens here yet: the dispatch probe fails
    settings = make_settings(1, lab_http_port=port)
    activities = build_activities(settings)
    async with running_worker(temporal_client, settings, activities):
        await TemporalCity(temporal_client, settings).ensure()
        async with api_client(temporal_client, settings, activities) as http:
            down = (await http.get("/v1/city")).json()
            root = await map_of(http)
        services = CityServiceLab(port=port)
        await services.start()
        try:
            async with api_client(temporal_client, settings, activities) as http:
                up = (await http.get("/v1/city")).json()
        finally:
            await services.stop()
    dispatch = zone(down, "dispatch")
    assert dispatch["state"] == "unhealthy"
    [service] = dispatch["services"]
    assert (service["id"], service["healthy"]) == ("emergency-dispatch", False)
    drawn = drawn_zone(root, "dispatch")
    assert drawn.get("data-state") == "unhealthy"
    assert "✖ ESSENTIAL SERVICE UNHEALTHY" in words(drawn)
    assert "service emergency-dispatch: UNHEALTHY" in words(drawn)
    assert zone(up, "dispatch")["state"] == "normal"
    assert zone(up, "dispatch")["services"][0]["healthy"] is True


async def test_the_city_needs_a_principal_and_is_503_when_temporal_is_unreachable(
    temporal_client: Client,
):
    settings = make_settings(1)
    async with api_client(temporal_client, settings, None, anonymous=True) as http:
        anonymous = [await http.get(p) for p in ("/v1/city", "/v1/city/map.svg")]
    assert [a.status_code for a in anonymous] == [401, 401]
    assert all(a.headers["content-type"] == PROBLEM for a in anonymous)
    away = make_settings(1, temporal_address=f"127.0.0.1:{free_port()}")
    client = await connect(away, lazy=True)
    async with api_client(client, away, None) as http:
        answers = [await http.get(p) for p in ("/v1/city", "/v1/city/map.svg")]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == PROBLEM
        assert answer.headers["retry-after"] == "5"
        detail = answer.json()["detail"]
        assert "city record" in detail and "incident list" in detail


async def test_many_waiting_incidents_are_counted_from_the_list_and_read_only_up_to_the_bound(
    temporal_client: Client, traffic_lab: TrafficLab, monkeypatch: pytest.MonkeyPatch
):
    """10,000 incidents waiting must not mean 10,000 queries per look: here the bound is
    2 of 5, and the other 3 still count, from their visibility rows."""
    monkeypatch.setattr(gather, "MAX_DETAILED", 2)
    reads: list[str] = []
    read_one = Responders.incident

    async def counted(self: Responders, incident_id: str) -> Any:
        reads.append(incident_id)
        return await read_one(self, incident_id)

    monkeypatch.setattr(Responders, "incident", counted)
    settings = make_settings(traffic_lab.port)
    gated = {"required": 2, "roles": ["responder", "duty-officer"], "timeout_s": 600}
    engine = ScriptedEngine([fallback_step("rtu-e01", approval=gated)])
    activities = scripted_activities(settings, engine)
    incidents = [new_incident() for _ in range(5)]
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        await TemporalCity(temporal_client, settings).ensure()
        await asyncio.gather(*(send(temporal_client, settings, p) for p in incidents))
        for params in incidents:
            await wait_for(
                temporal_client,
                params.incident_id,
                lambda v: v.status is IncidentStatus.AWAITING_APPROVAL,
            )
        picture = await city_when(http, lambda p: p["approvals"]["pending"] == 5)
        reads.clear()
        again = (await http.get("/v1/city")).json()
    assert len(reads) == 2, reads
    assert again["truncated"] is True and picture["truncated"] is True
    assert again["approvals"]["pending"] == 5
    waiting = again["approvals"]["waiting"]
    assert len(waiting) == 2 and {w["step_id"] for w in waiting} == {"fallback:rtu-e01"}
    assert zone(again, "energy")["awaiting_approval"] == 2  # the ones read name their zone
