"""Release in the console says what it will undo before it runs, what it did after, and
releases one step on its own. Real browser (Debian chromium via Playwright), real app,
worker, Temporal dev server, lab controllers and the shipped approval policy."""

from __future__ import annotations

from harness import wait_for
from playwright.async_api import Browser, expect
from temporalio.client import Client
from workflow_fakes import fallback_step, new_incident, send

from contracts.incident import StepState
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, TrafficLab

from .conftest import StartStack
from .test_browser import log_in

GATED = {"required": 2, "roles": ["responder", "duty-officer"], "timeout_s": 600}


async def test_release_previews_releases_one_step_then_reports(
    console_stack: StartStack, browser: Browser, temporal_client: Client, traffic_lab: TrafficLab
):
    steps = [
        fallback_step("tsc-0001"),
        fallback_step("tsc-0002", reversible=False),
        fallback_step("tsc-0003", approval=GATED),
    ]
    async with console_stack(steps) as stack:
        params = new_incident()
        await send(temporal_client, stack.settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: sum(s.state is StepState.VERIFIED for s in v.steps) == 2,
        )
        dora = await log_in(browser, stack, "dora")
        await dora.goto(f"{stack.url}/console/incidents/{params.incident_id}")
        release = dora.locator("#release")
        await expect(release.locator("#release-summary")).to_have_text(
            "Releasing it undoes 1 step; 1 irreversible step stays; 1 waiting step is cancelled."
        )
        await expect(release).to_contain_text(
            "fallback:tsc-0001: set tsc-0001 to flash; was normal"
        )
        await expect(release.locator("li", has_text="fallback:tsc-0002")).to_be_visible()
        await expect(release.locator("li", has_text="fallback:tsc-0003")).to_be_visible()
        # Enter in the first field of the page never releases: the release reason is a
        # textarea, below the steps, not the page's first field.
        first, kind = await dora.evaluate(
            "(() => { const f = document.querySelector("
            "'main input:not([type=hidden]), main textarea, main select');"
            " const r = document.getElementById('release-reason');"
            " return [f.id, r.tagName]; })()"
        )
        assert first != "release-reason" and kind == "TEXTAREA"

        card = dora.locator("#step-fallback-tsc-0001")
        await card.get_by_text("Release this step only").click()
        await card.get_by_label("Reason (required").fill("controller reflashed")
        await card.get_by_role("button", name="Release step").click()
        await expect(dora.locator(".alert.ok")).to_contain_text(
            "Step fallback:tsc-0001 is released"
        )
        await expect(card.locator("[data-state]")).to_have_text("rolled back")
        assert await traffic_lab.read_mode(1) == MODE_NORMAL
        assert await traffic_lab.read_mode(2) == MODE_FLASH, "the other steps stay"
        irreversible = dora.locator("#step-fallback-tsc-0002")
        await expect(irreversible.get_by_text("Release this step only")).to_have_count(0)

        await release.get_by_label("Reason").fill("threat removed")
        await release.get_by_role("button", name="Release the incident").click()
        outcome = dora.locator("#release")
        await expect(outcome.locator("h2")).to_have_text("Released")
        await expect(outcome.locator("#release-summary")).to_have_text(
            "Reverted 1 step; 1 irreversible step stayed."
        )
        await expect(outcome).to_contain_text("Stayed (cannot be undone)")
