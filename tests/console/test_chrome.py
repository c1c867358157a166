"""The paused banner on console pages, read from the city record's memo: a page asks the
worker for who paused and why only while the memo says paused, and still shows the banner
when no worker answers. Real Temporal dev server; no worker runs on the task queue."""

from __future__ import annotations

import pytest
from harness import make_settings
from temporalio.client import Client

from contracts.city import MEMO_ACTIVE, MEMO_PAUSED, city_workflow_id
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
