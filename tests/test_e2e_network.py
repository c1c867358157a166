"""The network chain end to end, on real pieces: a signed webhook into the API app, a
decision, IncidentWorkflow on the real Temporal dev server, nftables at the lab gateway
namespace, and real TCP between the lab's namespaces as the proof.

The first test runs the shipped policy (policies/, embedded regorus) wired exactly as
`bulkhead up` wires it (build_activities, TemporalCity, build_context): CrowdStrike's
documented finding about eng-ws-03 quarantines the workstation automatically, dispatch
stays reachable (real TCP, and the guard's own probe of the dispatch service), and a
responder's release through the API opens it again.

The second scripts the decision (tests/workflow_fakes.py ScriptedEngine): isolating the
whole traffic zone while sparing the signal pre-emption conduit (`args.allow`), a step the
shipped policy does not emit. Everything after the decision is the real thing there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from conftest import free_port
from harness import api_client, example_finding, make_settings, running_worker, signed, wait_for
from netlab import city_network, needs_netlab, nft_at
from temporalio.client import Client
from temporalio.service import RPCError
from workflow_fakes import ScriptedEngine, scripted_activities

from contracts.incident import IncidentStatus, IncidentView, Principal, ReleaseRequest, StepState
from orchestrator.config import DEFAULT_POLICY_DIR, REPO_ROOT, Settings
from orchestrator.lab.cityservice import CityServiceLab
from orchestrator.lab.network import CityNetwork
from orchestrator.lab.traffic import TrafficLab
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.responders.principals import PrincipalStore
from orchestrator.temporal.city import TemporalCity
from orchestrator.wiring.worker import build_activities

pytestmark = [pytest.mark.e2e, needs_netlab]

TSC1, TSC4 = "198.18.10.11", "198.18.10.14"  # traffic
SCADA = "198.18.20.10"  # energy
LDAP, ENG_WS = "198.18.40.10", "198.18.40.33"  # municipal-it
CAD = "198.18.50.10"  # dispatch (CAD); also the dispatch-preemption conduit
# An open path answers within a millisecond, so waiting long for it costs nothing and a
# busy machine cannot fake a cut; a dropped SYN never answers, however long we wait.
OPEN_WITHIN_S = 5.0
CUT_AFTER_S = 0.75

EDR_FINDING = REPO_ROOT / "examples" / "findings" / "ocsf-crowdstrike.json"
EDR_INCIDENT = "inc-eng-ws-03"  # the finding's entity: the host CrowdStrike names


async def is_open(city: CityNetwork, pairs: list[tuple[str, str]]) -> list[bool]:
    answers = await asyncio.gather(*(city.connect(s, d, timeout_s=OPEN_WITHIN_S) for s, d in pairs))
    return [answer is not None for answer in answers]


async def is_cut(city: CityNetwork, pairs: list[tuple[str, str]]) -> list[bool]:
    answers = await asyncio.gather(*(city.connect(s, d, timeout_s=CUT_AFTER_S) for s, d in pairs))
    return [answer is None for answer in answers]


def bulkhead_rules(city: CityNetwork) -> list[dict[str, Any]]:
    """The sets and rules Bulkhead holds at the lab gateway right now."""
    text = nft_at(city.gateway, "-j", "list", "table", "inet", "bulkhead")
    return [i for i in json.loads(text)["nftables"] if "set" in i or "rule" in i]


async def end_running(client: Client, *workflow_ids: str) -> None:
    """Incidents keyed by a fixed entity outlive the worker of the test that opened them:
    end any still running, so a new finding starts a fresh one on this test's worker."""
    for workflow_id in workflow_ids:
        with contextlib.suppress(RPCError):  # none, or already closed
            await client.get_workflow_handle(workflow_id).terminate("end-to-end test")


async def incident_when(
    http: httpx.AsyncClient,
    incident_id: str,
    holds: Callable[[dict[str, Any]], bool],
    within_s: float = 30.0,
) -> dict[str, Any]:
    """GET the incident through the API (a viewer's token) until `holds`."""
    deadline = time.monotonic() + within_s
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await http.get(f"/v1/incidents/{incident_id}")
        if response.status_code == 200:
            shown = response.json()
            if holds(shown):
                return shown
        await asyncio.sleep(0.1)
    raise AssertionError(f"{incident_id} never reached the expected state: {shown}")


@contextlib.asynccontextmanager
async def dispatch_service() -> AsyncIterator[CityServiceLab]:
    """The lab's city services; the guard probes dispatch's health endpoint there."""
    services = CityServiceLab(port=free_port())
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


def responder_token(settings: Settings) -> dict[str, str]:
    token = PrincipalStore(settings.principals_path).add("rita", ["responder"])
    return {"Authorization": f"Bearer {token}"}


# --- the shipped policy -----------------------------------------------------------------

# Cut while eng-ws-03 is quarantined: to it from other zones, and from it to them.
QUARANTINED = [(SCADA, ENG_WS), (CAD, ENG_WS), (ENG_WS, CAD), (ENG_WS, TSC1)]
# Kept: dispatch reached from every zone, the workstation's own zone included, and
# traffic between zones the step does not concern.
UNTOUCHED = [(LDAP, CAD), (SCADA, CAD), (TSC1, CAD), (CAD, LDAP), (SCADA, TSC1)]


async def test_edr_finding_quarantines_the_host_by_shipped_policy_and_api_release_reopens_it(
    temporal_client: Client, traffic_lab: TrafficLab
):
    body = EDR_FINDING.read_bytes()  # as CrowdStrike's documented sample, unchanged
    await end_running(temporal_client, EDR_INCIDENT)
    async with city_network() as city, dispatch_service() as services:
        settings = make_settings(
            traffic_lab.port, lab_netns_prefix=city.prefix, lab_http_port=services.port
        )
        # Wired as `bulkhead up` wires it: the city record, the shipped policy, the API.
        city_record = TemporalCity(temporal_client, settings)
        await city_record.ensure()
        activities = build_activities(settings, city_record)
        assert settings.policy_dir == DEFAULT_POLICY_DIR
        assert isinstance(activities.engine, EmbeddedEngine)
        shipped = EmbeddedEngine(settings.policy_dir).version
        assert await is_open(city, QUARANTINED + UNTOUCHED) == [True] * 9
        try:
            async with (
                running_worker(temporal_client, settings, activities),
                api_client(temporal_client, settings, activities) as http,
            ):
                secret = settings.webhook_secret.get_secret_value()
                posted = await http.post(
                    "/v1/webhooks/generic", content=body, headers=signed(body, secret)
                )
                assert posted.status_code == 202, posted.text
                assert posted.json()["findings"][0]["incident_id"] == EDR_INCIDENT

                # Reported contained at once; the guard looks again once the cut settled.
                contained = await incident_when(
                    http,
                    EDR_INCIDENT,
                    lambda i: i["status"] == "contained" and bool(i["steps"][0]["guard_report"]),
                )
                cut_during = await is_cut(city, QUARANTINED)
                open_during = await is_open(city, UNTOUCHED)

                released = await http.post(
                    f"/v1/incidents/{EDR_INCIDENT}/release",
                    json={"reason": "eng-ws-03 reimaged"},
                    headers=responder_token(settings),
                )
                assert released.status_code == 200, released.text
                open_after = await is_open(city, QUARANTINED + UNTOUCHED)
                leftovers = bulkhead_rules(city)
        finally:
            await end_running(temporal_client, EDR_INCIDENT, city_record.workflow_id)

    decision = contained["decision"]
    assert (decision["verdict"], decision["policy_version"]) == ("contain", shipped)
    (step,) = contained["steps"]
    assert (step["id"], step["adapter"], step["action"]) == (
        "quarantine:eng-ws-03",
        "nftables",
        "contain",
    )
    assert (step["target"], step["state"], step["approvals"]) == (
        {"device": "eng-ws-03"},
        "verified",
        [],
    )
    assert step["lease_expires_at"], "a reversible step holds a lease"
    # The host's own address is cut, and the gateway lets go by itself when the lease
    # would end (the shipped policy's dead-man's switch).
    after_apply = step["receipt"]["after"]
    assert list(after_apply["sets"].values()) == [[f"{ENG_WS}/32"]]
    assert after_apply["timeout_s"] == 3600
    guard = step["guard_report"]["after"]["services"]["emergency-dispatch"]
    assert guard["healthy"] is True, "the guard's own probe: dispatch stayed up"
    assert cut_during == [True] * len(QUARANTINED)
    assert open_during == [True] * len(UNTOUCHED)

    after = released.json()
    assert after["status"] == "released"
    assert [s["state"] for s in after["steps"]] == ["rolled_back"]
    assert open_after == [True] * 9
    assert leftovers == [], "the release removes the step's sets and rules"


# --- a scripted decision: zone isolation that spares a management conduit ---------------

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


async def test_zone_isolation_spares_the_preemption_conduit_and_release_restores(
    temporal_client: Client, traffic_lab: TrafficLab
):
    async with city_network() as city:
        settings = make_settings(traffic_lab.port, lab_netns_prefix=city.prefix)
        activities = scripted_activities(settings, ScriptedEngine([ISOLATE_TRAFFIC]))
        secret = settings.webhook_secret.get_secret_value()
        body = json.dumps(compromised_controller_finding()).encode()
        assert await is_open(city, CUT + KEPT) == [True] * len(CUT + KEPT)

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
            assert await is_cut(city, CUT) == [True] * len(CUT)
            assert await is_open(city, KEPT) == [True] * len(KEPT)

            handle = temporal_client.get_workflow_handle(incident_id)
            released = await handle.execute_update(
                "release",
                ReleaseRequest(principal=DORA, reason="controller reimaged"),
                result_type=IncidentView,
            )
            assert await is_open(city, CUT + KEPT) == [True] * len(CUT + KEPT)
            leftovers = bulkhead_rules(city)

    step = shown["steps"][0]
    assert (step["adapter"], step["state"]) == ("nftables", "verified")
    assert step["receipt"]["after"]["sets"], "the receipt names the sets it added"
    assert released.status is IncidentStatus.RELEASED
    assert released.steps[0].state is StepState.ROLLED_BACK
    assert leftovers == []
