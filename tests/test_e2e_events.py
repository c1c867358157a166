"""Issue #19, done when: a contained step produces an OCSF 7001/7004 event at the webhook
and at the real rsyslog. A release produces the revert event.

Real pieces: the Temporal dev server, the worker and API wired as `bulkhead up` wires
them (build_activities, the shipped policy; the event sender from `event_sender`, the
function `bulkhead worker` calls), the lab (Modbus controllers; the network lab in its
namespaces), a Standard Webhooks receiver and Debian's rsyslog on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from event_receivers import Rsyslog, WebhookReceiver, needs_rsyslog, schema_problems
from harness import api_client, example_finding, make_settings, running_worker, wait_for
from netlab import city_network, needs_netlab
from temporalio.client import Client
from test_e2e_network import EDR_FINDING, EDR_INCIDENT, dispatch_service, end_running
from webhook_helpers import post

from contracts.incident import IncidentStatus, IncidentView
from orchestrator.audit.sink import read_entries
from orchestrator.config import Settings, new_webhook_secret
from orchestrator.events.sender import EventSender, Pacing
from orchestrator.events.setup import event_sender
from orchestrator.lab.traffic import MODE_FLASH, TrafficLab
from orchestrator.responders.principals import PrincipalStore
from orchestrator.temporal.city import TemporalCity
from orchestrator.wiring.worker import AUDIT_FILE, build_activities

pytestmark = [pytest.mark.e2e, needs_rsyslog]


class Siem:
    """The SIEM's two ears: a webhook endpoint and rsyslog, each started when told."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.webhook = WebhookReceiver(new_webhook_secret())
        self.rsyslog = Rsyslog(directory)

    def settings(self, lab_port: int, **overrides: Any) -> Settings:
        return make_settings(
            lab_port,
            events_webhook_url=self.webhook.url,
            events_webhook_secret=self.webhook.secret,
            events_syslog_address=f"127.0.0.1:{self.rsyslog.port}",
            **overrides,
        )

    def start(self) -> None:
        self.webhook.start()
        self.rsyslog.start()

    def stop(self) -> None:
        self.webhook.stop()
        self.rsyslog.stop()

    def of(self, incident_id: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.webhook.events.values()
            if e["metadata"]["correlation_uid"] == incident_id
        ]

    async def heard(
        self, incident_id: str, count: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The incident's events at the webhook and at rsyslog, once each has `count`."""
        for _ in range(300):
            if len(self.of(incident_id)) >= count:
                break
            await asyncio.sleep(0.05)
        logged = [
            m["event"]
            for m in await self.rsyslog.wait_for(count, timeout_s=15)
            if m["event"]["metadata"]["correlation_uid"] == incident_id
        ]
        return self.of(incident_id), logged


@pytest.fixture
def siem(tmp_path: Path):
    made = Siem(tmp_path / "siem")
    yield made
    made.stop()


@contextlib.asynccontextmanager
async def sending(sender: EventSender | None) -> AsyncIterator[EventSender]:
    assert sender is not None, "the settings name two sinks"
    task = asyncio.ensure_future(sender.run())
    try:
        yield sender
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def sender_of(settings: Settings, client: Client, registry: Any) -> EventSender | None:
    # The production pacing, except that a SIEM back up is tried again within a second.
    return event_sender(
        settings,
        client,
        audit_path=settings.state_dir / AUDIT_FILE,
        registry=registry,
        pacing=Pacing(retry_max_s=1.0),
    )


def responder(settings: Settings) -> dict[str, str]:
    token = PrincipalStore(settings.principals_path).add("rita", ["responder"])
    return {"Authorization": f"Bearer {token}"}


def trail_kinds(settings: Settings, incident_id: str) -> list[str]:
    path = settings.state_dir / AUDIT_FILE
    return [
        e.kind
        for _, e in read_entries(path)
        if not isinstance(e, str) and e.incident_id == incident_id
    ]


async def test_traffic_fallback_is_heard_once_even_when_the_siem_was_down_and_its_release_too(
    temporal_client: Client, traffic_lab: TrafficLab, siem: Siem
):
    settings = siem.settings(traffic_lab.port)
    activities = build_activities(settings)
    registry = activities.metrics.registry
    body = json.dumps(
        example_finding(
            finding_info={"uid": "det-events-1", "title": "unauthorized Modbus writes"},
            resources=[{"uid": "tsc-0002"}],
            evidences=[],
            severity_id=4,
        )
    ).encode()
    async with (
        sending(sender_of(settings, temporal_client, registry)),
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        posted = await post(http, "generic", body, settings)
        assert posted.status_code == 202, posted.text
        incident = posted.json()["findings"][0]["incident_id"]
        # The SIEM is down: containment goes on, and so does the audit trail.
        contained = await wait_for(
            temporal_client, incident, lambda v: v.status is IncidentStatus.CONTAINED
        )
        assert await traffic_lab.read_mode(2) == MODE_FLASH
        await wait_for(
            temporal_client, incident, lambda _: "step.verified" in trail_kinds(settings, incident)
        )
        await wait_for(
            temporal_client,
            incident,
            lambda _: (
                (
                    registry.get_sample_value(
                        "bulkhead_events_total", {"sink": "webhook", "outcome": "failed"}
                    )
                    or 0
                )
                > 0
            ),
        )
        assert registry.get_sample_value("bulkhead_events_queued", {"sink": "syslog"}) == 1
        siem.start()  # and back
        (step,) = contained.steps
        heard, logged = await siem.heard(incident, 1)
        assert len(heard) == 1 and len(logged) == 1, "exactly one event per contained step"
        assert heard == logged
        released = await http.post(
            f"/v1/incidents/{incident}/release",
            json={"reason": "controller reflashed"},
            headers=responder(settings),
        )
        assert released.status_code == 200, released.text
        heard, logged = await siem.heard(incident, 2)
    assert siem.webhook.deliveries == 2 and siem.webhook.rejected == 0
    contain, restore = heard
    assert logged == heard
    assert [schema_problems(e) for e in heard] == [[], []]
    assert (contain["class_uid"], contain["activity_name"], contain["status"]) == (
        7001,
        "Isolate",
        "Success",
    )
    assert (restore["class_uid"], restore["activity_name"], restore["status"]) == (
        7001,
        "Restore",
        "Success",
    )
    _correlates(contain, contained, step.id, "det-events-1")
    assert restore["command_uid"] == step.id
    assert restore["status_detail"].startswith("incident released by rita")


@needs_netlab
async def test_a_quarantined_host_is_a_network_remediation_event_and_so_is_its_release(
    temporal_client: Client, traffic_lab: TrafficLab, siem: Siem
):
    siem.start()
    body = EDR_FINDING.read_bytes()  # CrowdStrike's documented sample: quarantine eng-ws-03
    await end_running(temporal_client, EDR_INCIDENT)
    async with city_network() as city, dispatch_service() as services:
        settings = siem.settings(
            traffic_lab.port, lab_netns_prefix=city.prefix, lab_http_port=services.port
        )
        city_record = TemporalCity(temporal_client, settings)
        await city_record.ensure()
        activities = build_activities(settings, city_record)
        try:
            async with (
                sending(sender_of(settings, temporal_client, activities.metrics.registry)),
                running_worker(temporal_client, settings, activities),
                api_client(temporal_client, settings, activities) as http,
            ):
                posted = await post(http, "generic", body, settings)
                assert posted.status_code == 202, posted.text
                contained = await wait_for(
                    temporal_client, EDR_INCIDENT, lambda v: v.status is IncidentStatus.CONTAINED
                )
                heard, logged = await siem.heard(EDR_INCIDENT, 1)
                assert len(heard) == 1 and logged == heard
                released = await http.post(
                    f"/v1/incidents/{EDR_INCIDENT}/release",
                    json={"reason": "reimaged"},
                    headers=responder(settings),
                )
                assert released.status_code == 200, released.text
                heard, logged = await siem.heard(EDR_INCIDENT, 2)
        finally:
            await end_running(temporal_client, EDR_INCIDENT, city_record.workflow_id)
    contain, restore = heard
    assert logged == heard
    assert [schema_problems(e) for e in heard] == [[], []]
    assert (contain["class_uid"], contain["activity_name"], contain["status"]) == (
        7004,
        "Isolate",
        "Success",
    )
    assert (restore["class_uid"], restore["activity_name"]) == (7004, "Restore")
    assert contain["device"]["name"] == "eng-ws-03"
    (step,) = contained.steps
    _correlates(contain, contained, step.id, contained.findings[0].finding_info.uid)


def _correlates(event: dict[str, Any], view: IncidentView, step_id: str, finding_uid: str) -> None:
    """What the SIEM joins on: the step, the incident, the finding, the policy version."""
    assert event["command_uid"] == step_id
    assert event["metadata"]["correlation_uid"] == view.incident_id
    assert event["unmapped"]["bulkhead"]["incident_id"] == view.incident_id
    assert finding_uid in event["unmapped"]["bulkhead"]["finding_uids"]
    assert view.decision is not None
    assert event["policy"]["version"] == view.decision.policy_version
    assert event["policy"]["uid"] == view.decision.decision_id
