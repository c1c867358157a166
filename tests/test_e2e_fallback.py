"""Issue #7, done when: in the lab, a traffic corridor goes to flash and a substation to
local control while the essential dispatch service stays healthy; a fallback that would
take dispatch down is rolled back by the guard, and the audit trail says why.

Real pieces: the Modbus controllers, the OPC UA substation, the HTTP city services (the
permits portal shares a database proxy with dispatch), the shipped policy and inventory,
the worker and API on the Temporal dev server, the guard's HTTP probe of dispatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from conftest import free_port
from harness import api_client, example_finding, make_settings, running_worker, signed, wait_for
from temporalio.client import Client

from contracts.incident import IncidentStatus, StepState
from orchestrator.lab.city import CITY_SERVICE_TOKEN_FILE
from orchestrator.lab.cityservice import CityServiceLab
from orchestrator.lab.secretfiles import write_secret
from orchestrator.lab.substation import SubstationLab
from orchestrator.lab.traffic import MODE_FLASH, TrafficLab
from orchestrator.responders.principals import PrincipalStore
from orchestrator.wiring.worker import build_activities

pytestmark = pytest.mark.e2e
CORRIDOR = ["tsc-0001", "tsc-0002", "tsc-0003", "tsc-0004"]


class DispatchWatch:
    """Polls the dispatch health endpoint the whole time, as a monitoring system would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[str, bool]] = []
        self.phase = "setup"

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=1) as http:
            while True:
                try:
                    ok = (await http.get(self.url)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.samples.append((self.phase, ok))
                await asyncio.sleep(0.05)

    def down_during(self, phase: str) -> int:
        return sum(1 for p, ok in self.samples if p == phase and not ok)


def finding(uid: str, *assets: str) -> bytes:
    document = example_finding(
        finding_info={"uid": uid, "title": f"compromise of {', '.join(assets)}"},
        resources=[{"uid": a} for a in assets],
        evidences=[],
        severity_id=4,
    )
    return json.dumps(document).encode()


@pytest.fixture
async def labs() -> AsyncIterator[tuple[TrafficLab, SubstationLab, CityServiceLab]]:
    parts = (
        TrafficLab(port=free_port()),
        SubstationLab(port=free_port()),
        CityServiceLab(port=free_port()),
    )
    await asyncio.gather(*(part.start() for part in parts))
    try:
        yield parts
    finally:
        await asyncio.gather(*(part.stop() for part in parts))


async def test_corridor_flash_substation_local_and_guard_rollback(temporal_client: Client, labs):
    traffic, substation, services = labs
    settings = make_settings(
        traffic.port,
        lab_opcua_port=substation.port,
        lab_http_port=services.port,
        guard_settle_s=0.2,
    )
    write_secret(settings.lab_secrets_dir / CITY_SERVICE_TOKEN_FILE, services.token)
    watch = DispatchWatch(f"{services.url}/dispatch/health")
    watcher = asyncio.ensure_future(watch.run())
    store = PrincipalStore(settings.principals_path)
    alice = {"Authorization": f"Bearer {store.add('alice', ['responder'])}"}
    dora = {"Authorization": f"Bearer {store.add('dora', ['duty-officer'])}"}
    key = settings.webhook_secret.get_secret_value()
    activities = build_activities(settings)
    try:
        async with (
            running_worker(temporal_client, settings, activities),
            api_client(temporal_client, settings, activities) as http,
        ):

            async def post(body: bytes) -> str:
                answer = await http.post(
                    "/v1/webhooks/generic", content=body, headers=signed(body, key)
                )
                assert answer.status_code == 202, answer.text
                return str(answer.json()["findings"][0]["incident_id"])

            watch.phase = "corridor"
            corridor = await post(finding("det-corridor", *CORRIDOR))
            await wait_for(
                temporal_client, corridor, lambda v: v.status is IncidentStatus.CONTAINED
            )
            assert [await traffic.read_mode(u) for u in (1, 2, 3, 4)] == [MODE_FLASH] * 4

            watch.phase = "substation"
            grid = await post(finding("det-rtu", "rtu-e01"))
            waiting = await wait_for(
                temporal_client, grid, lambda v: v.status is IncidentStatus.AWAITING_APPROVAL
            )
            step = waiting.steps[0]
            assert (step.id, step.required_approvals) == ("fallback:rtu-e01", 2)
            answers = [
                await http.post(
                    f"/v1/incidents/{grid}/steps/{step.id}/approve",
                    json={"reason": "RTU writes from an unknown host"},
                    headers=who,
                )
                for who in (alice, dora)
            ]
            assert [a.status_code for a in answers] == [200, 200], answers[-1].text
            # Reported contained at once; the guard looks again once the change settled.
            contained = await wait_for(
                temporal_client,
                grid,
                lambda v: (
                    v.status is IncidentStatus.CONTAINED and v.steps[0].guard_report is not None
                ),
            )
            assert await substation.read("North") == 1  # local_manual
            assert contained.steps[0].guard == ["power-distribution"]
            after = contained.steps[0].guard_report["after"]["services"]
            assert after["power-distribution"]["healthy"] is True

            watch.phase = "permits"
            permits = await post(finding("det-permits", "permits-app-01"))
            undone = await wait_for(
                temporal_client,
                permits,
                lambda v: v.steps and v.steps[0].state is StepState.ROLLED_BACK,
            )
            await asyncio.sleep(0.2)
            watch.phase = "after"
            await asyncio.sleep(0.3)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    # Dispatch never went down while the corridor and the substation were contained, and
    # the guard's rollback brought it back.
    assert [watch.down_during(p) for p in ("corridor", "substation", "after")] == [0, 0, 0]
    # The fallback, then its rollback: the permits portal is back to normal.
    assert (services.modes["permits"], services.writes["permits"]) == ("normal", 2)
    kinds = [e.kind for e in undone.audit]
    assert (
        kinds.index("step.verified")
        < kinds.index("guard.tripped")
        < kinds.index("step.rolled_back")
    )
    tripped = next(e for e in undone.audit if e.kind == "guard.tripped")
    assert tripped.detail["services"] == ["emergency-dispatch"]
    assert "emergency-dispatch" in (undone.steps[0].error or "")
    assert undone.escalated
