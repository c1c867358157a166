"""The paused banner on console pages, read from the city record's memo: a page asks the
worker for who paused and why only while the memo says paused, and still shows the banner
when no worker answers; the nav counts overdue approvals. Real Temporal dev server; no
worker runs on the task queue but in the last test."""

from __future__ import annotations

import asyncio
import re

import pytest
from harness import make_settings, wait_for
from temporalio.client import Client
from workflow_fakes import fallback_step, new_incident, send

from contracts.city import MEMO_ACTIVE, MEMO_PAUSED, city_workflow_id
from contracts.incident import IncidentStatus
from workflows.city import CityWorkflow

from .conftest import add_people, asgi, console_app, end_incidents
from .test_session import QUICK, log_in


@pytest.fixture
async def app(temporal_client: Client, rego):
    settings = make_settings(1)
    application = console_app(temporal_client, settings, rego)
    application.state.people = add_people(settings)
    application.state.settings = settings
    yield application
    await end_incidents(temporal_client, settings)


async def city_record(client: Client, app, *, paused: bool) -> None:
    """The city record as the server holds it, with no worker to answer its query."""
    settings = app.state.settings
    await client.start_workflow(
        CityWorkflow.run,
        None,
        id=city_workflow_id(settings.task_queue),
        task_queue=settings.task_queue,
        memo={MEMO_PAUSED: paused, MEMO_ACTIVE: 0},
    )


async def test_running_automation_shows_no_banner_and_asks_no_worker(
    app, temporal_client, monkeypatch: pytest.MonkeyPatch
):
    await city_record(temporal_client, app, paused=False)
    city = app.state.context.city
    asked: list[str] = []

    async def query_of_the_record() -> None:
        asked.append("view")  # a query: it would wait for a worker that is not there
        raise AssertionError("the chrome queried the city record while automation runs")

    monkeypatch.setattr(city, "view", query_of_the_record)
    async with asgi(app) as http:
        await log_in(http, app.state.people["alice"])
        shown = await http.get(QUICK)
    assert shown.status_code == 404  # the incident does not exist; the frame is drawn
    assert 'id="paused-banner"' not in shown.text
    assert asked == [], "running automation is read from the memo alone"


async def test_paused_automation_is_shown_on_every_page_even_with_no_worker(app, temporal_client):
    await city_record(temporal_client, app, paused=True)
    async with asgi(app) as http:
        await log_in(http, app.state.people["alice"])
        pages = [await http.get(path) for path in ("/console/incidents", QUICK)]
    for shown in pages:
        assert 'id="paused-banner"' in shown.text
        assert "Automation is paused" in shown.text
        assert "Who paused it cannot be read now" in shown.text


async def test_the_nav_counts_a_step_past_its_deadline_as_overdue(
    console_stack, temporal_client: Client
):
    """Nobody approved in time: the incident is escalated, its step still waits, and the
    navigation counts it among the pending approvals and, apart, as overdue."""
    late = {"required": 1, "timeout_s": 1, "on_timeout": "escalate"}
    async with console_stack([fallback_step("tsc-0002", approval=late)]) as stack:
        params = new_incident()
        await send(temporal_client, stack.settings, params)
        await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.ESCALATED
        )
        async with asgi(stack.app) as http:
            await log_in(http, stack.tokens["alice"])
            for _ in range(100):  # visibility catches up with the workflow's upsert
                shown = await http.get("/console/approvals")
                if 'id="nav-overdue"' in shown.text:
                    break
                await asyncio.sleep(0.1)
            incident = await http.get(f"/console/incidents/{params.incident_id}")
    nav = shown.text.split("</nav>")[0]
    assert re.search(r'id="nav-overdue"[^>]*>1<', nav), nav[-600:]
    assert "Pending approvals" in nav
    # The step is marked overdue, and the policy (asked ahead) keeps a responder's
    # late approval for a duty officer.
    assert 'id="step-fallback-tsc-0002-overdue"' in incident.text
    assert "is overdue and was escalated: a late approval needs the role duty-officer" in (
        incident.text
    )
