"""Every vendor's sample, posted through `bulkhead send` to a real server, lands in an incident."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from harness import (
    running_worker,
    serving,
    wait_for,
)
from temporalio.client import Client
from webhook_helpers import mixed_auth_settings, sample_path, terminate
from workflow_fakes import ScriptedEngine

from orchestrator.activities import ContainmentActivities
from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.cli import send
from orchestrator.config import Settings
from orchestrator.ingest.connectors import CONNECTORS
from orchestrator.ingest.entity import entity_of, incident_id_for
from orchestrator.wiring.inventory import Inventory

# --- every vendor, through `bulkhead send` and a real server ----------------------------------

# What each sample must come out as: severity, rule (analytic uid or title), hosts/IPs, user.
SAMPLES = {
    "generic": (4, "ics-modbus-unauth-write", {"tsc-0001", "198.18.10.11"}, None),
    "splunk": (
        4,
        "Threat - Modbus Write From Municipal IT - Rule",
        {"198.18.10.12"},
        "svc-signals",
    ),
    "elastic": (5, "bulkhead-opcua-write-rtu", {"rtu-e01", "198.18.20.11"}, "svc-scada"),
    "sentinel": (4, "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", {"scada-e01"}, "svc-scada"),
    "wazuh": (4, "40112", {"tram-ops-01", "198.18.30.10", "198.18.40.77"}, "svc-signals"),
    "suricata": (4, "1:2026001:3", {"198.18.40.77", "198.18.10.11"}, None),
    "falco": (5, "Unexpected outbound connection destination", {"permits-web-01"}, "svc-permits"),
    "alertmanager": (5, "SignalControllerUnexpectedWrites", {"tsc-0003", "198.18.10.13"}, None),
}


def named_things(finding: dict[str, Any]) -> tuple[set[str], set[str]]:
    hosts = {r["uid"] for r in finding["resources"]}
    users: set[str] = set()
    for evidence in finding["evidences"]:
        for side in ("src_endpoint", "dst_endpoint"):
            endpoint = evidence.get(side) or {}
            hosts |= {v for v in (endpoint.get("ip"), endpoint.get("hostname")) if v}
        if evidence.get("user") and evidence["user"].get("name"):
            users.add(evidence["user"]["name"])
    return hosts, users


async def test_every_vendor_sample_posts_through_bulkhead_send_to_an_incident(
    temporal_client: Client, capsys
):
    settings = mixed_auth_settings()
    context = build_context(
        settings, temporal_client, None, settings.webhook_secret.get_secret_value()
    )
    # The worker only has to hold the incidents: a policy that contains nothing.
    activities = ContainmentActivities(ScriptedEngine([]), Inventory.load(settings.policy_dir), {})
    started: list[str] = []
    try:
        async with (
            running_worker(temporal_client, settings, activities),
            serving(create_app(context)) as url,
        ):
            for source, (severity, rule, hosts, user) in SAMPLES.items():
                finding = CONNECTORS[source].normalize(json.loads(sample_path(source).read_text()))[
                    0
                ]
                incident_id = incident_id_for(entity_of(finding))
                await terminate(temporal_client, incident_id)
                started.append(incident_id)
                code = await asyncio.to_thread(
                    send.send, settings, source, sample_path(source), api_url=url
                )
                printed = capsys.readouterr().out
                assert code == 0, printed
                # stdout also holds the in-process server's log lines: find the printed JSON.
                shown, _ = json.JSONDecoder().raw_decode(printed[printed.index("{\n") :])
                answer = shown["findings"][0]
                assert answer["incident_id"] == incident_id
                view = await wait_for(
                    temporal_client,
                    incident_id,
                    lambda v, uid=answer["finding_uid"]: any(
                        f.finding_info.uid == uid for f in v.findings
                    ),
                )
                (got,) = [
                    f.model_dump(mode="json")
                    for f in view.findings
                    if f.finding_info.uid == answer["finding_uid"]
                ]
                analytic = got["finding_info"]["analytic"] or {}
                assert got["severity_id"] == severity, source
                assert rule in (
                    analytic.get("uid"),
                    analytic.get("name"),
                    got["finding_info"]["title"],
                )
                named_hosts, named_users = named_things(got)
                assert hosts <= named_hosts, (source, named_hosts)
                assert (user in named_users) if user else not named_users, (source, named_users)
    finally:
        for incident_id in started:
            await terminate(temporal_client, incident_id)


async def test_send_refuses_without_a_secret_and_says_why(tmp_path, capsys):
    settings = Settings(state_dir=tmp_path)
    assert send.send(settings, "generic", sample_path("generic")) == 2
    assert "no webhook secret" in capsys.readouterr().err
