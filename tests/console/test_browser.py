"""The console in a real browser (Debian chromium via Playwright) against the real app,
worker, Temporal dev server, lab controllers and the shipped approval policy."""

from __future__ import annotations

import re

import httpx
from harness import example_finding, wait_for
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client
from workflow_fakes import fallback_step, new_incident, send

from contracts.findings import Finding
from contracts.incident import IncidentStatus, StepState
from orchestrator.lab.traffic import MODE_FLASH, TrafficLab

from .conftest import Stack, StartStack

GATED = {
    "required": 2,
    "roles": ["responder", "duty-officer"],
    "must_include_roles": ["duty-officer"],
    "timeout_s": 600,
}
# ms: a change must reach an open page within this. Pages poll every second or two, but
# a list waits out the query timeout of incidents other tests left without a worker.
LIVE_S = 30_000


async def log_in(browser: Browser, stack: Stack, name: str, **context_options) -> Page:
    context = await browser.new_context(**context_options)
    page = await context.new_page()
    await page.goto(f"{stack.url}/console")
    await expect(page).to_have_url(re.compile(r"/console/login\?next="))
    await page.get_by_label("Token").fill(stack.tokens[name])
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator(".whoami")).to_contain_text(name)
    return page


async def every_field_is_labelled(page: Page) -> None:
    unlabelled = await page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
        ".filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"
    )
    assert unlabelled == [], f"fields without a label: {unlabelled}"


async def the_list_filters_find(page: Page, stack: Stack, incident_id: str) -> None:
    """The incident list shows the incident under its zone and severity, not as released."""
    await page.goto(f"{stack.url}/console/incidents?zone=traffic&severity=4")
    listed = page.locator("tr", has_text=incident_id)
    await expect(listed).to_contain_text("awaiting approval")
    await every_field_is_labelled(page)
    await page.get_by_label("Status").select_option("released")
    await page.get_by_role("button", name="Filter").click()
    await expect(page).to_have_url(re.compile(r"status=released"))
    await expect(listed).to_have_count(0)
    await page.goto(f"{stack.url}/console/incidents/{incident_id}")


async def a_late_deny_shows_the_workflow_refusal(
    page: Page, stack: Stack, incident_id: str
) -> None:
    """Denying a verified step: the workflow refuses (409), and the page says so."""
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    late = await page.request.post(
        f"{stack.url}/console/incidents/{incident_id}/actions",
        form={"csrf": csrf or "", "action": "deny", "step": "fallback:tsc-0002", "reason": "x"},
    )
    assert late.status == 409
    text = await late.text()
    assert "Not done:</strong> step fallback:tsc-0002 is verified; only a step not yet" in text


async def approve_on_a_phone_by_keyboard(
    browser: Browser, stack: Stack, name: str, incident_id: str
) -> Page:
    """On a 390px-wide phone, with the keyboard only: type a reason, Tab, Enter."""
    page = await log_in(browser, stack, name, viewport={"width": 390, "height": 844})
    await page.goto(f"{stack.url}/console/incidents/{incident_id}")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the incident page is {width}px wide on a 390px phone"
    await page.locator("#step-fallback-tsc-0002-reason").focus()
    await page.keyboard.type(f"{name}: go")
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Approve"
    await page.keyboard.press("Enter")
    await expect(page.locator(".alert.ok")).to_contain_text("approval of step")
    return page


async def test_four_eyes_approval_live_in_the_browser(
    console_stack: StartStack,
    browser: Browser,
    temporal_client: Client,
    traffic_lab: TrafficLab,
):
    """A responder sees a step that needs approval appear without reloading, approves it
    with a reason, and sees it verified once a duty officer (on a phone, by keyboard)
    brings the second pair of eyes."""
    steps = [fallback_step("tsc-0001"), fallback_step("tsc-0002", approval=GATED)]
    async with console_stack(steps) as stack:
        alice = await log_in(browser, stack, "alice", viewport={"width": 1280, "height": 900})
        await alice.goto(f"{stack.url}/console/approvals")
        await expect(alice.get_by_text("Nothing is waiting for approval.")).to_be_visible()
        await alice.evaluate("window.stayed = true")
        params = new_incident()
        await send(temporal_client, stack.settings, params)

        row = alice.locator("tr", has_text=params.incident_id).filter(has_text="fallback:tsc-0002")
        await expect(row).to_be_visible(timeout=LIVE_S)
        await expect(row).to_contain_text("0 of 2, with a duty-officer")
        assert await alice.evaluate("window.stayed") is True, "it arrived without a reload"
        await row.get_by_role("link", name="fallback:tsc-0002").click()

        card = alice.locator("#step-fallback-tsc-0002")
        await expect(card.locator("[data-state]")).to_have_text("awaiting approval")
        await card.get_by_label("Reason").fill("firmware diff confirmed with the TMC")
        await card.get_by_role("button", name="Approve").click()
        await expect(alice.locator(".alert.ok")).to_contain_text("approval of step")
        await expect(card.locator(".approvals")).to_contain_text("alice")
        await expect(card.locator(".approvals")).to_contain_text("firmware diff confirmed")
        await expect(card.locator("[data-state]")).to_have_text("awaiting approval")
        # The policy, asked ahead of time, says why alice cannot approve a second time.
        await expect(card.get_by_role("button", name="Approve")).to_be_disabled()
        await expect(card).to_contain_text("alice already approved step fallback:tsc-0002")
        await expect(alice.locator("#step-fallback-tsc-0001 [data-state]")).to_have_text("verified")

        await the_list_filters_find(alice, stack, params.incident_id)
        await expect(alice.locator("#live-status")).to_contain_text("Live", timeout=LIVE_S)
        assert traffic_lab.write_count(2) == 0, "one approval is not enough"

        await alice.evaluate("window.stayed = true")
        await alice.locator("#release-reason").fill("draft: waiting for the vendor")
        dora = await approve_on_a_phone_by_keyboard(browser, stack, "dora", params.incident_id)

        await expect(card.locator("[data-state]")).to_have_text("verified", timeout=LIVE_S)
        await expect(card.locator(".approvals li")).to_have_count(2)
        await expect(card.locator(".countdown")).to_contain_text(re.compile(r"in \d+m"))
        assert await alice.evaluate("window.stayed") is True, "verified without a reload"
        # What the responder was typing survives the live update.
        draft = alice.locator("#release-reason")
        await expect(draft).to_have_value("draft: waiting for the vendor")

        await a_late_deny_shows_the_workflow_refusal(alice, stack, params.incident_id)
        await alice.context.close()
        await dora.context.close()
    assert await traffic_lab.read_mode(2) == MODE_FLASH


async def test_a_viewer_sees_disabled_buttons_and_the_api_refuses_too(
    console_stack: StartStack, browser: Browser, temporal_client: Client
):
    """The disabled state is the approval policy's answer: a viewer's buttons are
    disabled with its reason, the JSON API answers 403, and a forced form shows it."""
    async with console_stack([fallback_step("tsc-0003", approval=GATED)]) as stack:
        params = new_incident()
        await send(temporal_client, stack.settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: v.status is IncidentStatus.AWAITING_APPROVAL,
        )
        vic = await log_in(browser, stack, "vic")
        # Followed from another site (localhost is not 127.0.0.1's site), a link keeps the
        # session although the browser withholds the SameSite=Strict cookie at first.
        elsewhere = stack.url.replace("127.0.0.1", "localhost")
        await vic.goto(f"{elsewhere}/console/static/console.css")
        page_url = f"{stack.url}/console/incidents/{params.incident_id}"
        await vic.evaluate(f"location.href = {page_url!r}")
        await expect(vic).to_have_url(page_url)
        card = vic.locator("#step-fallback-tsc-0003")
        for name in ("Approve", "Deny"):
            await expect(card.get_by_role("button", name=name)).to_be_disabled()
        await expect(card.get_by_label("Reason")).to_be_disabled()
        await expect(vic.get_by_role("button", name="Release")).to_be_disabled()
        await expect(card.locator(".why").first).to_contain_text("Approve not allowed")
        await expect(card.locator(".why").first).to_contain_text("viewer is read-only")

        async with httpx.AsyncClient(base_url=stack.url) as http:
            api = await http.post(
                f"/v1/incidents/{params.incident_id}/steps/fallback:tsc-0003/approve",
                json={"reason": "lgtm"},
                headers={"Authorization": f"Bearer {stack.tokens['vic']}"},
            )
            anonymous = await http.get("/console/approvals/events")
        assert api.status_code == 403
        assert api.headers["content-type"] == "application/problem+json"
        assert "viewer is read-only" in api.json()["detail"]
        assert "event: logout" in anonymous.text

        # Forcing the disabled form changes nothing: the same policy refuses, on the page.
        await expect(vic.locator("#live-status")).to_contain_text("Live", timeout=LIVE_S)
        await vic.evaluate(
            "document.querySelectorAll('#step-fallback-tsc-0003 [disabled]')"
            ".forEach(e => { e.disabled = false; })"
        )
        await card.get_by_label("Reason").fill("trying anyway")
        await card.get_by_role("button", name="Approve").click()
        await expect(vic.get_by_role("alert")).to_contain_text("vic may not approve")
        await expect(vic.get_by_role("alert")).to_contain_text("viewer is read-only")
        view = await wait_for(temporal_client, params.incident_id, lambda v: True)
        assert view.steps[0].approvals == []
        await vic.context.close()
        streams = stack.app.state.console.streams
        view = await wait_for(temporal_client, params.incident_id, lambda v: streams.active == 0)
    assert streams.active == 0, "closing the page ended its live stream"


async def test_essential_zone_step_from_the_shipped_policy_waits_for_a_duty_officer(
    console_stack: StartStack, browser: Browser, temporal_client: Client
):
    """With the shipped containment policy: the page shows its verdict, reasons and
    version; the controller's fallback ran on its own, the essential-zone RTU's waits for
    two approvers, and a second responder is not enough: a duty officer must be one."""
    document = example_finding()
    document["finding_info"]["title"] += " and substation RTU rtu-e01"
    document["resources"].append(
        {
            "uid": "rtu-e01",
            "name": "Substation RTU, North",
            "type": "substation_rtu",
            "zone": "energy",
        }
    )
    async with console_stack(None) as stack:
        params = new_incident()
        await send(temporal_client, stack.settings, params, Finding.model_validate(document))
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: (
                [s.state for s in v.steps] == [StepState.AWAITING_APPROVAL, StepState.VERIFIED]
            ),
        )
        alice = await log_in(browser, stack, "alice", viewport={"width": 1280, "height": 900})
        await alice.goto(f"{stack.url}/console/incidents/{params.incident_id}")
        await expect(alice.locator(".reasons")).to_contain_text("zone energy is essential")
        await expect(alice.get_by_text(re.compile(r"^sha256:[0-9a-f]+$"))).to_be_visible()
        rtu = alice.locator("#step-fallback-rtu-e01")
        await expect(rtu).to_contain_text("power-distribution")
        await rtu.get_by_label("Reason").fill("Confirmed with the energy control room")
        await rtu.get_by_role("button", name="Approve").click()
        await expect(rtu.locator(".approvals")).to_contain_text("alice")
        await expect(rtu).to_contain_text("1 of 2 approvals")
        await expect(alice.locator("#live-status")).to_contain_text("Live", timeout=LIVE_S)
        await every_field_is_labelled(alice)

        bob = await log_in(browser, stack, "bob")
        await bob.goto(f"{stack.url}/console/incidents/{params.incident_id}")
        bob_rtu = bob.locator("#step-fallback-rtu-e01")
        await expect(bob_rtu.get_by_role("button", name="Approve")).to_be_disabled()
        await expect(bob_rtu).to_contain_text("still needs an approver with the role duty-officer")
        await expect(bob_rtu.get_by_role("button", name="Deny")).to_be_enabled()
        await alice.context.close()
        await bob.context.close()
