"""The console's pictures in docs/CONSOLE.md, taken from the real stack: `make screenshots`
(or `pytest tests/console/screenshots.py`; BULKHEAD_SCREENSHOTS=<dir> writes elsewhere).

Not collected by the suite (it rewrites files in docs/img). It runs what the browser tests
run: the Temporal dev server, a worker with the shipped policy, the app, the lab's traffic
controllers and its OPC UA substation, and Debian's chromium. The story is the README's:
a compromised traffic controller is contained on its own, the substation RTU waits for
two approvers, a duty officer pauses automation, then alice and dora approve the RTU.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from harness import example_finding, wait_for
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client
from workflow_fakes import new_incident, send

from contracts.findings import Finding
from contracts.incident import IncidentStatus, StepState
from orchestrator.lab.city import CITY_SERVICE_TOKEN_FILE
from orchestrator.lab.cityservice import CityServiceLab
from orchestrator.lab.secretfiles import write_secret
from orchestrator.lab.substation import SubstationLab

from .conftest import Stack, StartStack
from .test_browser import log_in
from .test_home_browser import SUBSTATION, change_automation, zone_state

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("BULKHEAD_SCREENSHOTS") or ROOT / "docs/img")
WIDE = {"width": 1280, "height": 900}
RTU = "fallback:rtu-e01"


@pytest.fixture(autouse=True)
def out_dir() -> None:
    OUT.mkdir(parents=True, exist_ok=True)


async def test_screenshots(console_stack: StartStack, browser: Browser, temporal_client: Client):
    substation = SubstationLab(port=free_port())
    services = CityServiceLab(port=free_port())  # dispatch, whose health the map shows
    await substation.start()
    await services.start()
    try:
        lab_ports = {"lab_opcua_port": substation.port, "lab_http_port": services.port}
        async with console_stack(None, **lab_ports) as stack:
            write_secret(stack.settings.lab_secrets_dir / CITY_SERVICE_TOKEN_FILE, services.token)
            await _story(stack, browser, temporal_client)
    finally:
        await services.stop()
        await substation.stop()


async def _story(stack: Stack, browser: Browser, client: Client) -> None:
    traffic = new_incident()
    await send(client, stack.settings, traffic, Finding.model_validate(example_finding()))
    energy = new_incident()
    # Without the attacker's address: quarantining it needs the lab network (root), and
    # the pictures are of the RTU's step.
    rtu = Finding.model_validate({**json.loads(SUBSTATION.read_text()), "evidences": []})
    await send(client, stack.settings, energy, rtu)
    await wait_for(client, traffic.incident_id, lambda v: v.status is IncidentStatus.CONTAINED)
    await wait_for(client, energy.incident_id, lambda v: _rtu(v) is StepState.AWAITING_APPROVAL)

    dora = await log_in(browser, stack, "dora", viewport=WIDE)
    await dora.goto(f"{stack.url}/console")
    await expect(zone_state(dora, "energy")).to_have_text("awaiting approval")
    await expect(zone_state(dora, "traffic")).to_have_text("contained")
    await _shoot(dora, "console-home.png")

    await change_automation(dora, stack, "pause", "IDS storm of false positives")
    await expect(dora.locator("#paused-banner")).to_be_visible()
    await _shoot(dora, "console-paused.png")
    await change_automation(dora, stack, "resume", "IDS rule fixed")

    await asyncio.sleep(2)  # so the wait for approvers shows on the timeline
    async with httpx.AsyncClient(base_url=stack.url) as http:
        for name in ("alice", "dora"):
            approved = await http.post(
                f"/v1/incidents/{energy.incident_id}/steps/{RTU}/approve",
                json={"reason": f"{name}: confirmed with the energy control room"},
                headers={"Authorization": f"Bearer {stack.tokens[name]}"},
            )
            assert approved.status_code == 200, approved.text
            await asyncio.sleep(1)
    await wait_for(client, energy.incident_id, lambda v: _rtu(v) is StepState.VERIFIED)
    await dora.goto(f"{stack.url}/console/incidents/{energy.incident_id}")
    timeline = dora.locator("#timeline")
    await expect(timeline).to_contain_text("Contained")
    await timeline.locator("summary").click()
    await dora.evaluate("window.scrollTo(0, 0)")
    await dora.screenshot(path=OUT / "console-incident-timeline.png")  # the page as it opens
    await dora.context.close()


def _rtu(view) -> StepState | None:  # type: ignore[no-untyped-def]
    return next((s.state for s in view.steps if s.id == RTU), None)


async def _shoot(page: Page, name: str) -> None:
    await expect(page.locator("#live-status")).to_contain_text("Live", timeout=30_000)
    await page.screenshot(path=OUT / name, full_page=True)
