"""Issue #20: every pair `query features` lists, from an OpenC2 command over HTTP to a
verified step on the real lab, and back by the pair's undo.

Wired as `bulkhead up` wires it (build_activities, the shipped policy on embedded regorus,
TemporalCity, build_context) on the real Temporal dev server. The network pairs are
proven with real TCP between the lab's namespaces through nftables at the lab gateway;
`set er:account` on slapd, scim2-server and OpenBao. Commands are written from the
profiles' own examples (SLPF Annex A, ER Annex E) with the arguments real producers add.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from harness import api_client, make_settings, running_worker, wait_for
from netlab import city_network, needs_netlab, nft_at
from temporalio.client import Client
from temporalio.service import RPCError
from test_e2e_identity import (
    identity_servers,
    ldap_bind_works,
    scim_active,
    vault_login_works,
    vault_token_works,
)
from test_e2e_network import CAD, ENG_WS, LDAP, SCADA, TSC1, dispatch_service, is_cut, is_open

from contracts.incident import StepState
from orchestrator.lab import ldap as ldap_lab
from orchestrator.lab.identity import IdentityLab
from orchestrator.lab.network import CityNetwork
from orchestrator.lab.traffic import TrafficLab
from orchestrator.responders.principals import PrincipalStore
from orchestrator.standards.openc2_consumer import rule_number
from orchestrator.temporal.city import TemporalCity
from orchestrator.wiring.worker import build_activities

pytestmark = [pytest.mark.e2e]
V11 = "application/openc2+json;version=1.0"
WORKSTATION = "inc-eng-ws-03"  # eng-ws-03 (198.18.40.33), municipal-it: not essential


def producer(settings: Any) -> dict[str, str]:
    store = PrincipalStore(settings.principals_path)
    token = store.add(f"soar-{uuid.uuid4().hex[:6]}", ["openc2-producer"])
    return {"Authorization": f"Bearer {token}"}


async def command(
    http: httpx.AsyncClient, caller: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    """POST the command; the OpenC2 response (HTTP status = OpenC2 status, 102 in a 200)."""
    answer = await http.post(
        "/v1/openc2", content=json.dumps(body), headers={**caller, "content-type": V11}
    )
    response: dict[str, Any] = answer.json()
    assert answer.status_code == (200 if response["status"] == 102 else response["status"])
    return response


async def ended(client: Client, *workflow_ids: str) -> None:
    for workflow_id in workflow_ids:
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(workflow_id).terminate("openc2 end-to-end test")


@contextlib.asynccontextmanager
async def city_api(
    client: Client, traffic_lab: TrafficLab
) -> AsyncIterator[tuple[CityNetwork, httpx.AsyncClient, Any]]:
    """The lab city, its dispatch service (the guard's probe), a worker and the API."""
    await ended(client, WORKSTATION)
    async with city_network() as city, dispatch_service() as services:
        settings = make_settings(
            traffic_lab.port, lab_netns_prefix=city.prefix, lab_http_port=services.port
        )
        record = TemporalCity(client, settings)
        await record.ensure()
        activities = build_activities(settings, record)
        try:
            async with (
                running_worker(client, settings, activities),
                api_client(client, settings, activities) as http,
            ):
                yield city, http, settings
        finally:
            await ended(client, WORKSTATION, record.workflow_id)


def rules_at_gateway(city: CityNetwork) -> list[dict[str, Any]]:
    listing = json.loads(nft_at(city.gateway, "-j", "list", "table", "inet", "bulkhead"))
    return [item for item in listing["nftables"] if "set" in item or "rule" in item]


# Cut while eng-ws-03 is denied: to it from other zones and from it to them.
HOST_CUT = [(SCADA, ENG_WS), (CAD, ENG_WS), (ENG_WS, CAD), (ENG_WS, TSC1)]
UNTOUCHED = [(LDAP, CAD), (SCADA, CAD), (TSC1, CAD), (SCADA, TSC1)]


@needs_netlab
async def test_deny_ipv4_net_with_a_duration_cuts_the_host_and_delete_of_its_rule_restores_it(
    temporal_client: Client, traffic_lab: TrafficLab
):
    """SLPF Annex A.1.3 with a duration: the step's lease, the rule number is the step."""
    async with city_api(temporal_client, traffic_lab) as (city, http, settings):
        assert await is_open(city, HOST_CUT + UNTOUCHED) == [True] * 8
        soar = producer(settings)
        deny = {
            "action": "deny",
            "target": {"ipv4_net": ENG_WS},
            "args": {
                "duration": 600_000,
                "response_requested": "complete",
                "slpf": {"drop_process": "none"},
            },
            "actuator": {"slpf": {}},
            "command_id": str(uuid.uuid4()),
        }
        denied = await command(http, soar, deny)
        cut = await is_cut(city, HOST_CUT)
        kept = await is_open(city, UNTOUCHED)
        shown = (await http.get(f"/v1/incidents/{WORKSTATION}")).json()
        number = denied["results"]["slpf"]["rule_number"]
        deleted = await command(
            http,
            soar,
            {
                "action": "delete",
                "target": {"slpf:rule_number": number},
                "args": {"response_requested": "complete"},
            },
        )
        reopened = await is_open(city, HOST_CUT + UNTOUCHED)
        leftovers = rules_at_gateway(city)
    assert denied["status"] == 200, denied
    assert denied["results"]["x-bulkhead"] == {
        "incident_id": WORKSTATION,
        "steps": {"deny:198.18.40.33_32": "verified"},
    }
    assert number == rule_number(WORKSTATION, "deny:198.18.40.33_32")
    assert cut == [True] * len(HOST_CUT)
    assert kept == [True] * len(UNTOUCHED)
    (step,) = shown["steps"]
    assert (step["lease_s"], step["receipt"]["after"]["timeout_s"]) == (600, 600)
    assert shown["decision"]["verdict"] == "contain"
    assert deleted["status"] == 200, deleted
    assert deleted["results"]["x-bulkhead"]["steps"] == {"deny:198.18.40.33_32": "rolled_back"}
    assert reopened == [True] * 8
    assert leftovers == []


@needs_netlab
async def test_deny_ipv4_connection_cuts_only_that_flow_and_delete_restores_it(
    temporal_client: Client, traffic_lab: TrafficLab
):
    """SLPF Annex A.1.1: one direction of one service; everything else still flows."""
    async with city_api(temporal_client, traffic_lab) as (city, http, settings):
        soar = producer(settings)
        # The lab's hosts answer TCP on city.port: cut that service, one way.
        flow = {"src_addr": ENG_WS, "dst_addr": TSC1, "protocol": "tcp", "dst_port": city.port}
        deny = {
            "action": "deny",
            "target": {"ipv4_connection": flow},
            "args": {"response_requested": "complete", "duration": 300_000},
            "actuator": {"slpf": {}},
        }
        denied = await command(http, soar, deny)
        cut = await is_cut(city, [(ENG_WS, TSC1)])
        kept = await is_open(city, [(TSC1, ENG_WS), (ENG_WS, CAD), (SCADA, TSC1), (CAD, ENG_WS)])
        rules = rules_at_gateway(city)
        number = denied["results"]["slpf"]["rule_number"]
        deleted = await command(
            http, soar, {"action": "delete", "target": {"slpf:rule_number": number}}
        )
        reopened = await is_open(city, [(ENG_WS, TSC1)])
    assert denied["status"] == 200, denied
    ((step_id, state),) = denied["results"]["x-bulkhead"]["steps"].items()
    assert step_id.startswith("deny-flow:") and state == "verified"
    assert cut == [True]
    assert kept == [True] * 4
    assert any("dport" in json.dumps(item) for item in rules if "rule" in item)
    assert deleted["status"] == 200, deleted
    assert reopened == [True]


@needs_netlab
async def test_contain_device_isolates_the_host_but_its_permitted_address_and_allow_releases(
    temporal_client: Client, traffic_lab: TrafficLab
):
    """ER Annex E.1.2 / E.1.X: network isolation with a permitted address; E.1.3's undo."""
    async with city_api(temporal_client, traffic_lab) as (city, http, settings):
        soar = producer(settings)
        device = {"device": {"hostname": "eng-ws-03"}}
        contain = {
            "action": "contain",
            "target": device,
            "args": {
                "er": {
                    "device_containment": "network_isolation",
                    "permitted_addresses": {"ipv4_net": [CAD]},
                }
            },
            "actuator": {"er": {}},
        }
        contained = await command(http, soar, contain)
        cut = await is_cut(city, [(SCADA, ENG_WS), (ENG_WS, TSC1)])
        kept = await is_open(city, [(ENG_WS, CAD), (CAD, ENG_WS), (SCADA, TSC1)])
        allowed = await command(
            http, soar, {"action": "allow", "target": device, "actuator": {"er": {}}}
        )
        reopened = await is_open(city, [(SCADA, ENG_WS), (ENG_WS, TSC1)])
        again = await command(
            http, soar, {"action": "allow", "target": device, "actuator": {"er": {}}}
        )
    assert contained["status"] == 200, contained
    assert contained["results"]["x-bulkhead"]["steps"] == {"quarantine:eng-ws-03": "verified"}
    assert cut == [True, True]
    assert kept == [True] * 3
    assert allowed["status"] == 200, allowed
    assert reopened == [True, True]
    assert again["status"] == 404, "nothing is held any more"


# --- set er:account on the identity lab --------------------------------------------------


@pytest.fixture
async def identity_lab() -> AsyncIterator[IdentityLab]:
    if ldap_lab.unavailable() is not None:
        pytest.skip(str(ldap_lab.unavailable()))
    async with identity_servers() as servers:
        yield servers


async def test_set_account_disabled_waits_for_approval_then_disables_svc_scada_everywhere(
    temporal_client: Client, identity_lab: IdentityLab
):
    """ER Annex E.2.1: svc-scada is used in the essential energy zone, so its revocation
    waits for two approvals (102); approved, LDAP, SCIM and OpenBao all refuse it; the
    producer's `enabled` gives back what can come back (Vault's revocation cannot)."""
    lab = identity_lab
    settings = lab.settings
    incident = "inc-svc-scada"
    await ended(temporal_client, incident)
    store = PrincipalStore(settings.principals_path)
    people = [
        {"Authorization": f"Bearer {store.add('alice', ['responder'])}"},
        {"Authorization": f"Bearer {store.add('dora', ['duty-officer'])}"},
    ]
    soar = producer(settings)
    account = {"er": {"account": {"account_name": "svc-scada"}}}
    activities = build_activities(settings)
    assert ldap_bind_works(lab) and vault_token_works(lab) and await scim_active(lab)
    try:
        async with (
            running_worker(temporal_client, settings, activities),
            api_client(temporal_client, settings, activities) as http,
        ):
            disabled = await command(
                http,
                soar,
                {
                    "action": "set",
                    "target": account,
                    "args": {"er": {"account_status": "disabled"}},
                    "actuator": {"er": {}},
                },
            )
            untouched = ldap_bind_works(lab) and vault_token_works(lab)
            for step_id in disabled["results"]["x-bulkhead"]["steps"]:
                for who in people:
                    path = f"/v1/incidents/{incident}/steps/{step_id}/approve"
                    approved = await http.post(
                        path, json={"reason": "SOAR playbook 12"}, headers=who
                    )
                    assert approved.status_code == 200, approved.text
            await wait_for(
                temporal_client,
                incident,
                lambda v: all(s.state is StepState.VERIFIED for s in v.steps),
                timeout_s=60,
            )
            revoked = (
                ldap_bind_works(lab),
                await scim_active(lab),
                vault_token_works(lab),
                vault_login_works(lab),
            )
            enabled = await command(
                http,
                soar,
                {
                    "action": "set",
                    "target": account,
                    "args": {"er": {"account_status": "enabled"}},
                    "actuator": {"er": {}},
                },
            )
            restored = (ldap_bind_works(lab), await scim_active(lab), vault_token_works(lab))
    finally:
        await ended(temporal_client, incident)
    assert disabled["status"] == 102, disabled
    assert "a duty-officer among them" in disabled["status_text"]
    assert disabled["results"]["x-bulkhead"]["steps"] == {
        f"revoke:svc-scada@{system}": "awaiting_approval"
        for system in ("ldap-city", "scim-idp", "vault-city")
    }
    assert untouched, "nothing is revoked before people approve"
    assert revoked == (False, False, False, False), "svc-scada still works somewhere"
    assert enabled["status"] == 200, enabled
    assert restored == (True, True, False), "LDAP and SCIM back; a Vault revocation cannot be"
