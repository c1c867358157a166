"""The console's home page (the city right now), its paused banner and approvals count,
and an incident's timeline, in Debian's chromium against the real app, worker, Temporal
dev server, lab controllers and the shipped policies."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import httpx
from conftest import free_port
from harness import wait_for
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client
from workflow_fakes import fallback_step, new_incident, send

from contracts.findings import Finding
from contracts.incident import IncidentStatus
from orchestrator.lab.substation import SubstationLab

from .conftest import Stack, StartStack
from .test_browser import GATED, LIVE_S, log_in

SUBSTATION = Path(__file__).resolve().parents[2] / "examples/findings/substation-rtu-writes.json"


def zone_state(page: Page, zone: str):
    return page.locator(f"#zones tr[data-zone={zone}] [data-state]")


async def change_automation(page: Page, stack: Stack, action: str, reason: str) -> None:
    await page.goto(f"{stack.url}/console")
    await page.get_by_label(re.compile(f"^{action} automation", re.I)).fill(reason)
    await page.get_by_role("button", name=action.capitalize(), exact=True).click()
    await expect(page.locator(".alert.ok")).to_contain_text(f"Automation is {action}")


async def test_home_shows_the_substation_awaiting_approval_and_a_pause_on_every_page(
    console_stack: StartStack, browser: Browser, temporal_client: Client
):
    """After the substation example the energy zone awaits approval, on the map and in
    its table; the nav counts it. A duty officer pauses automation from the home page:
    every page then names who paused it and why, until it is resumed."""
    substation = SubstationLab(port=free_port())  # the RTU, and the service it probes
    await substation.start()
    try:
        await _substation_and_pause(console_stack, browser, temporal_client, substation.port)
    finally:
        await substation.stop()


async def _substation_and_pause(
    console_stack: StartStack, browser: Browser, temporal_client: Client, opcua_port: int
) -> None:
    async with console_stack(None, lab_opcua_port=opcua_port) as stack:
        params = new_incident()
        finding = Finding.model_validate(json.loads(SUBSTATION.read_text()))
        await send(temporal_client, stack.settings, params, finding)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: any(s.state.value == "awaiting_approval" for s in v.steps),
        )
        dora = await log_in(browser, stack, "dora", viewport={"width": 1280, "height": 900})
        await dora.goto(f"{stack.url}/console")
        await expect(zone_state(dora, "energy")).to_have_text("awaiting approval")
        await expect(zone_state(dora, "transit")).to_have_text("normal")
        await expect(dora.locator(".city-map svg")).to_contain_text("energy")
        await expect(dora.locator("#pending-count")).to_have_text("1")
        await expect(dora.locator("#nav-pending")).to_have_text("1 waiting")
        await expect(dora.locator("#paused-banner")).to_have_count(0)

        await change_automation(dora, stack, "pause", "storm of false positives from the IDS")
        pages = ["/console", "/console/incidents", "/console/approvals"]
        pages.append(f"/console/incidents/{params.incident_id}")
        for path in pages:
            await dora.goto(f"{stack.url}{path}")
            banner = dora.locator("#paused-banner")
            await expect(banner).to_contain_text("Paused by dora at 20")
            await expect(banner).to_contain_text("storm of false positives from the IDS")
            if path == "/console":
                await expect(dora.locator("#automation-state")).to_contain_text("Paused by dora")

        vic = await log_in(browser, stack, "vic")
        await vic.goto(f"{stack.url}/console")
        await expect(vic.locator("#paused-banner")).to_be_visible()
        await expect(vic.get_by_role("button", name="Resume")).to_be_disabled()
        await expect(vic.locator("#automation-why")).to_contain_text("viewer is read-only")

        await change_automation(dora, stack, "resume", "IDS rule fixed")
        for path in pages:
            await dora.goto(f"{stack.url}{path}")
            await expect(dora.locator("h1")).to_be_visible()
            await expect(dora.locator("#paused-banner")).to_have_count(0)
        await dora.context.close()
        await vic.context.close()


async def test_home_turns_contained_live_on_approval_and_the_timeline_shows_it(
    console_stack: StartStack, browser: Browser, temporal_client: Client
):
    """The home page follows a step from awaiting approval to contained without a
    reload; the incident's timeline then draws its phases in order, in UTC."""
    steps = [fallback_step("tsc-0001"), fallback_step("tsc-0002", approval=GATED)]
    async with console_stack(steps) as stack:
        alice = await log_in(browser, stack, "alice", viewport={"width": 1280, "height": 900})
        await alice.goto(f"{stack.url}/console")
        await alice.evaluate("window.stayed = true")
        params = new_incident()
        await send(temporal_client, stack.settings, params)
        traffic = zone_state(alice, "traffic")
        await expect(traffic).to_have_text("awaiting approval", timeout=LIVE_S)

        async with httpx.AsyncClient(base_url=stack.url) as http:
            for name in ("alice", "dora"):
                approved = await http.post(
                    f"/v1/incidents/{params.incident_id}/steps/fallback:tsc-0002/approve",
                    json={"reason": f"{name}: confirmed with the TMC"},
                    headers={"Authorization": f"Bearer {stack.tokens[name]}"},
                )
                assert approved.status_code == 200, approved.text
        await expect(traffic).to_have_text("contained", timeout=LIVE_S)
        row = alice.locator("#zones tr[data-zone=traffic]")
        await expect(row).to_contain_text("fallback:tsc-0002")
        await expect(row.locator(".countdown").first).to_contain_text(re.compile(r"in \d+m"))
        assert await alice.evaluate("window.stayed") is True, "contained without a reload"

        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
        await alice.goto(f"{stack.url}/console/incidents/{params.incident_id}")
        timeline = alice.locator("#timeline")
        await expect(timeline).to_contain_text(re.compile(r"Contained [\d.]+ s"))
        lanes = await timeline.locator(".tl-name").all_text_contents()
        assert lanes == ["incident", "fallback:tsc-0001", "fallback:tsc-0002"]
        moments = timeline.locator(".tl-moments li")
        texts = await moments.all_text_contents()
        times = await moments.locator("time").evaluate_all(
            "els => els.map(e => e.getAttribute('datetime'))"
        )
        assert times == sorted(times, key=datetime.fromisoformat)
        assert all(text.split(" (+")[0].endswith("UTC") for text in texts)
        said = [t.split(": ", 1)[1] for t in texts if "fallback:tsc-0002" in t]
        assert said[:4] == [
            "planned; waits for approval", "dry run on the target, for the approvers",
            "approved by alice", "approved by dora",
        ]  # fmt: skip
        assert said[-1].startswith("verified; lease held until")
        # Every entry of the trail is a moment, but the plans recorded for the undo.
        assert len(texts) == len([e for e in view.audit if e.kind != "step.intent"])
        await alice.context.close()
