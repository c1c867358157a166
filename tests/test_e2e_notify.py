"""Issue #19, done when: with `notify_urls` set, the substation example produces a page
at the receiver naming the incident, with a console link.

Real pieces: the Temporal dev server, the worker and API wired as `bulkhead worker` wires
them (build_activities and the shipped policy; the notifier from `notifier`, the function
`worker_part` calls), Apprise, and a JSON webhook receiver on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from pathlib import Path

import pytest
from conftest import free_port
from harness import api_client, example_finding, make_settings, running_worker
from netlab import city_network, needs_netlab
from notify_receivers import JsonReceiver, json_receiver
from temporalio.client import Client
from test_e2e_network import dispatch_service, end_running
from webhook_helpers import post

from orchestrator.activities import ContainmentActivities
from orchestrator.config import Settings
from orchestrator.lab.city import CITY_SERVICE_TOKEN_FILE
from orchestrator.lab.secretfiles import write_secret
from orchestrator.lab.substation import SubstationLab
from orchestrator.lab.traffic import TrafficLab
from orchestrator.notify.setup import notifier
from orchestrator.responders.links import step_anchor
from orchestrator.wiring.worker import AUDIT_FILE, build_activities

pytestmark = [pytest.mark.e2e]

SUBSTATION = Path(__file__).resolve().parent.parent / "examples/findings/substation-rtu-writes.json"
PUBLIC = "https://bulkhead.city.example"


@needs_netlab
async def test_the_substation_example_pages_the_duty_channel_with_a_console_link(
    temporal_client: Client, traffic_lab: TrafficLab
):
    await end_running(temporal_client, "inc-rtu-e01")
    substation = SubstationLab(port=free_port())
    await substation.start()
    async with city_network() as city, dispatch_service() as services:
        with json_receiver() as duty:
            settings = make_settings(
                traffic_lab.port,
                lab_netns_prefix=city.prefix,
                lab_http_port=services.port,
                lab_opcua_port=substation.port,
                notify_urls=[f"duty=json://127.0.0.1:{duty.port}/page"],
                public_url=PUBLIC,
            )
            write_secret(settings.lab_secrets_dir / CITY_SERVICE_TOKEN_FILE, services.token)
            activities = build_activities(settings)
            registry = activities.metrics.registry
            try:
                incident = await page_for_substation(temporal_client, settings, activities, duty)
            finally:
                await substation.stop()
    pages = [b for b in duty.bodies if "Approval needed" in b["title"]]
    assert len(pages) == 1, (duty.bodies, " ".join(trail_kinds(settings)))
    page = pages[0]
    assert incident in page["title"]
    # A deep link to the step's card, as the console renders its anchor.
    step = re.search(r"^Step: (\S+)", page["message"], re.MULTILINE)
    assert step is not None, page["message"]
    link = f"{PUBLIC}/console/incidents/{incident}#{step_anchor(step[1])}"
    assert f"Console: {link}" in page["message"]
    assert "Zone: energy" in page["message"]
    assert "Plan: switch rtu-e01 to local_manual" in page["message"]
    assert "was 0 (remote)" in page["message"]  # the dry run's blast radius
    assert "Approvals needed: 2" in page["message"]
    assert "Approve by:" in page["message"]
    channel = f"json://127.0.0.1:{duty.port}"
    assert registry.get_sample_value(
        "bulkhead_notifications_total", {"channel": channel, "outcome": "delivered"}
    ) == len(duty.bodies)
    logged = (settings.state_dir / "notifications.jsonl").read_text().splitlines()
    assert any(json.loads(line)["incidents"] == [incident] for line in logged)


async def page_for_substation(
    client: Client, settings: Settings, activities: ContainmentActivities, duty: JsonReceiver
) -> str:
    """Sends the example through the API; the incident's id once its page arrived."""
    pager = notifier(
        settings,
        client,
        activities.engine,
        audit_path=settings.state_dir / AUDIT_FILE,
        registry=activities.metrics.registry,
    )
    assert pager is not None
    task = asyncio.ensure_future(pager.run())
    body = SUBSTATION.read_bytes()
    try:
        async with (
            running_worker(client, settings, activities),
            api_client(client, settings, activities) as http,
        ):
            posted = await post(http, "generic", body, settings)
            assert posted.status_code == 202, posted.text
            incident = str(posted.json()["findings"][0]["incident_id"])
            for _ in range(300):
                if any("Approval needed" in b["title"] for b in duty.bodies):
                    break
                await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return incident


def trail_kinds(settings: Settings) -> list[str]:
    path = settings.state_dir / AUDIT_FILE
    if not path.exists():
        return ["(no audit file)"]
    return [json.loads(line)["kind"] for line in path.read_text().splitlines()]


async def test_a_storm_of_1000_findings_is_at_most_10_messages_per_channel_with_a_digest(
    temporal_client: Client, traffic_lab: TrafficLab
):
    """1,000 findings about 40 assets the inventory does not know (the policy escalates
    each incident to a person) through the API, worker and Temporal."""
    run = uuid.uuid4().hex[:8]
    with json_receiver() as duty, json_receiver() as log:
        settings = make_settings(
            traffic_lab.port,
            notify_urls=[
                f"duty=json://127.0.0.1:{duty.port}/page",
                f"log=json://127.0.0.1:{log.port}/log",
            ],
            public_url=PUBLIC,
        )
        activities = build_activities(settings)
        pager = notifier(
            settings,
            temporal_client,
            activities.engine,
            audit_path=settings.state_dir / AUDIT_FILE,
            registry=activities.metrics.registry,
        )
        assert pager is not None
        task = asyncio.ensure_future(pager.run())
        try:
            async with (
                running_worker(temporal_client, settings, activities),
                api_client(temporal_client, settings, activities) as http,
            ):
                for i in range(1000):
                    document = example_finding(
                        finding_info={"uid": f"storm-{run}-{i}", "title": "worm spreading"},
                        resources=[{"uid": f"ghost-{run}-{i % 40}"}],
                        evidences=[],
                        severity_id=4,
                    )
                    body = json.dumps(document).encode()
                    posted = await post(http, "generic", body, settings)
                    assert posted.status_code == 202, posted.text
                for _ in range(900):  # the first window's digest, at most 90 s away
                    if any("incidents in the last" in b["title"] for b in duty.bodies):
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # anything more that would come, comes now
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for receiver in (duty, log):
        assert 1 <= len(receiver.bodies) <= 10, [b["title"] for b in receiver.bodies]
    digests = [b for b in duty.bodies if "incidents in the last" in b["title"]]
    assert digests, [b["title"] for b in duty.bodies]
    assert "escalated by the policy" in digests[0]["title"]
    # Every one of the 40 incidents is told of: 3 on their own, the rest in the digest.
    # (A slow machine may spread them over more than one window: then more digests.)
    alone = [b for b in duty.bodies if b not in digests]
    assert len(alone) == 3
    in_digests = sum(int(d["title"].split()[1]) for d in digests)
    assert len(alone) + in_digests == 40
