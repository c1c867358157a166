"""GET /v1/incidents/{id}/cacao on a real incident: its workflow's state, exported."""

from __future__ import annotations

import base64
import json

from harness import api_client, make_settings, running_worker, wait_for
from temporalio.client import Client
from webhook_helpers import terminate
from workflow_fakes import ScriptedEngine, fallback_step, scripted_activities, send
from workflow_fakes import new_incident as unique_incident

from contracts.incident import IncidentStatus
from orchestrator.lab.traffic import TrafficLab
from orchestrator.standards.cacao_check import check

GATED = {"required": 2, "roles": ["responder", "duty-officer"], "timeout_s": 600}


async def test_a_waiting_incident_exports_a_playbook_and_an_unknown_one_is_404(
    temporal_client: Client, traffic_lab: TrafficLab
):
    """A fallback and a quarantine, both waiting for approval (nothing is applied)."""
    settings = make_settings(traffic_lab.port)
    quarantine = {
        "id": "quarantine:eng-ws-03",
        "adapter": "nftables",
        "action": "contain",
        "target": {"device": "eng-ws-03"},
        "args": {"timeout_s": 1800},
        "lease_s": 1800,
        "approval": GATED,
    }
    engine = ScriptedEngine([fallback_step("tsc-0001", approval=GATED), quarantine])
    activities = scripted_activities(settings, engine)
    params = unique_incident()
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        try:
            await send(temporal_client, settings, params)
            await wait_for(
                temporal_client,
                params.incident_id,
                lambda v: v.status is IncidentStatus.AWAITING_APPROVAL and len(v.steps) == 2,
            )
            answer = await http.get(f"/v1/incidents/{params.incident_id}/cacao")
            again = await http.get(f"/v1/incidents/{params.incident_id}/cacao")
            unknown = await http.get("/v1/incidents/inc-no-such-entity/cacao")
        finally:
            await terminate(temporal_client, params.incident_id)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert [p.line() for p in check(document)] == []
    assert again.json()["id"] == document["id"]
    named = {s["name"]: s for s in document["workflow"].values()}
    assert {"fallback:tsc-0001: approval", "quarantine:eng-ws-03: approval"} <= set(named)
    assert named["fallback:tsc-0001: approval"]["timeout"] == 600_000
    # The served inventory gives the workstation's address: an SLPF deny, not a manual step.
    (command,) = named["quarantine:eng-ws-03: apply"]["commands"]
    deny = json.loads(base64.b64decode(command["content_b64"]))
    assert deny["target"] == {"ipv4_net": "198.18.40.33/32"}
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
