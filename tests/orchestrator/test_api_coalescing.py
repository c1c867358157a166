"""A burst of webhooks about one entity: fewer signals than findings, none lost.

Real API app, real Temporal, real worker: the findings that arrive while a call to their
incident is in flight travel together (orchestrator/ingest/coalescer.py), every one is
answered 202 only once it is in Temporal, and the incident counts each exactly once.
"""

from __future__ import annotations

import asyncio
import json
import re

from harness import (
    api_client,
    example_finding,
    fresh_ip,
    make_settings,
    running_worker,
    signed,
    wait_for,
)
from temporalio.client import Client
from webhook_helpers import terminate
from workflow_fakes import ScriptedEngine, scripted_activities

from orchestrator.lab.traffic import TrafficLab

BURST = 60


def signals_and_findings(metrics: str) -> tuple[float, float]:
    found = dict(re.findall(r"^bulkhead_findings_per_signal_(sum|count) (\S+)$", metrics, re.M))
    return float(found["count"]), float(found["sum"])


async def test_a_burst_about_one_entity_travels_in_fewer_signals_and_every_finding_lands(
    temporal_client: Client, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port)
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    entity = fresh_ip()
    bodies = []
    for i in range(BURST):
        document = example_finding(resources=[{"uid": entity}], severity_id=3)
        document["finding_info"] = {"uid": f"burst-{entity}-{i}", "title": "burst"}
        bodies.append(json.dumps(document).encode())
    activities = scripted_activities(settings, ScriptedEngine([]))
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, None) as http,
    ):
        answers = await asyncio.gather(
            *(
                http.post("/v1/webhooks/generic", content=body, headers=signed(body, secret))
                for body in bodies
            )
        )
        assert [a.status_code for a in answers] == [202] * BURST
        incident_ids = {a.json()["findings"][0]["incident_id"] for a in answers}
        assert len(incident_ids) == 1
        (incident_id,) = incident_ids
        view = await wait_for(temporal_client, incident_id, lambda v: v.findings_received >= BURST)
        signals, carried = signals_and_findings((await http.get("/metrics")).text)
    assert view.findings_received == BURST and view.duplicates == 0
    assert carried == BURST, "each finding went to Temporal exactly once"
    assert signals < BURST, "findings that arrived together were not coalesced"
    await terminate(temporal_client, incident_id)
