"""Issue 5's "done when", end to end: a signed finding about a compromised traffic
controller, posted to the webhook API, drives IncidentWorkflow on the real Temporal dev
server to isolate the traffic zone at the lab gateway with nftables. Real TCP between the
lab's namespaces proves the zone is cut, emergency dispatch still reaches its services
(and the signal pre-emption conduit), and the workflow's `release` update restores it.

The decision comes from ScriptedEngine (tests/workflow_fakes.py): one nftables `contain`
step on zone traffic, in the step contract the policy layer implements. The Rego for this
finding is written concurrently and may not emit that step yet; everything after the
decision (API, workflow, activities, adapter, kernel) is the real thing.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from harness import api_client, example_finding, make_settings, running_worker, signed, wait_for
from netlab import city_network, needs_netlab, nft_at
from temporalio.client import Client
from workflow_fakes import ScriptedEngine, scripted_activities

from orchestrator.lab.network import CityNetwork
from orchestrator.lab.traffic import TrafficLab
from workflows.state import IncidentStatus, IncidentView, Principal, ReleaseRequest, StepState

pytestmark = [pytest.mark.e2e, needs_netlab]

ISOLATE_TRAFFIC = {
    "id": "isolate:traffic",
    "adapter": "nftables",
    "action": "contain",
    "target": {"zone": "traffic"},
    "args": {"allow": ["dispatch-preemption"], "timeout_s": 1800},
    "approval": {"required": 0},
    "lease_s": 1800,
    "reversible": True,
}
TSC1, TSC4 = "198.18.10.11", "198.18.10.14"
SCADA, LDAP, ENG_WS, CAD = "198.18.20.10", "198.18.40.10", "198.18.40.33", "198.18.50.10"
# Cut while traffic is isolated: into the zone, out of it, from the workstation in the finding.
CUT = [(SCADA, TSC1), (TSC1, LDAP), (ENG_WS, TSC1)]
# Kept: dispatch to its directory (municipal-it) and to the pre-emption conduit, and
# zones the incident does not concern.
KEPT = [(CAD, LDAP), (CAD, TSC4), (TSC4, CAD), (SCADA, CAD)]
DORA = Principal(name="dora", roles=["duty-officer", "responder"])


def compromised_controller_finding() -> dict[str, object]:
    """The README's finding, keyed to an entity no other test uses (one incident each)."""
    entity = f"tsc-0001-{uuid.uuid4().hex[:6]}"
    finding = example_finding(resources=[{"uid": entity}, {"uid": "tsc-0001"}])
    finding["finding_info"] = {"uid": f"det-{uuid.uuid4().hex}", "title": "tsc-0001 compromised"}
    return finding


async def reachable(city: CityNetwork, pairs: list[tuple[str, str]]) -> list[bool]:
    answers = await asyncio.gather(*(city.connect(s, d, timeout_s=0.75) for s, d in pairs))
    return [answer is not None for answer in answers]


async def test_compromised_controller_isolates_traffic_keeps_dispatch_and_release_restores(
    temporal_client: Client, traffic_lab: TrafficLab
):
    async with city_network() as city:
        settings = make_settings(traffic_lab.port, lab_netns_prefix=city.prefix)
        activities = scripted_activities(settings, ScriptedEngine([ISOLATE_TRAFFIC]))
        secret = settings.webhook_secret.get_secret_value()
        body = json.dumps(compromised_controller_finding()).encode()
        assert await reachable(city, CUT + KEPT) == [True] * len(CUT + KEPT)

        async with (
            running_worker(temporal_client, settings, activities),
            api_client(temporal_client, settings, activities) as http,
        ):
            response = await http.post(
                "/v1/webhooks/generic", content=body, headers=signed(body, secret)
            )
            assert response.status_code == 202, response.text
            incident_id = response.json()["findings"][0]["incident_id"]
            await wait_for(
                temporal_client, incident_id, lambda v: v.status is IncidentStatus.CONTAINED
            )
            shown = (await http.get(f"/v1/incidents/{incident_id}")).json()
            assert await reachable(city, CUT) == [False] * len(CUT)
            assert await reachable(city, KEPT) == [True] * len(KEPT)

            handle = temporal_client.get_workflow_handle(incident_id)
            released = await handle.execute_update(
                "release",
                ReleaseRequest(principal=DORA, reason="controller reimaged"),
                result_type=IncidentView,
            )
            assert await reachable(city, CUT + KEPT) == [True] * len(CUT + KEPT)
            leftovers = nft_at(city.gateway, "-j", "list", "table", "inet", "bulkhead")

    step = shown["steps"][0]
    assert (step["adapter"], step["state"]) == ("nftables", "verified")
    assert step["receipt"]["after"]["sets"], "the receipt names the sets it added"
    assert released.status is IncidentStatus.RELEASED
    assert released.steps[0].state is StepState.ROLLED_BACK
    assert '"rule"' not in leftovers and '"set"' not in leftovers
