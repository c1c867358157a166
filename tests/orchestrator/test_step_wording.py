"""Steps in words (orchestrator/responders/wording.py), over real step JSON.

tests/fixtures/steps/recorded.json is what a real `bulkhead up` showed for every example
finding (tests/fixtures/steps/record.py made it: the lab's Modbus, OPC UA, HTTP, slapd,
SCIM, OpenBao, the shipped policy and inventory). The OpenC2 network targets, which no
example finding produces, are planned here by the real nftables adapter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from netlab import INVENTORY

from adapters.network.nft import Nft
from adapters.network.nftables import NftablesAdapter
from contracts.adapter import StepCommand
from contracts.incident import StepView
from orchestrator.responders import wording

RECORDED: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).parents[1] / "fixtures/steps/recorded.json").read_text()
)
STEPS = {(name, step["id"]): step for name, steps in RECORDED.items() for step in steps}


def step(example: str, step_id: str) -> dict[str, Any]:
    return STEPS[(example, step_id)]


def test_the_recording_is_what_the_api_shows():
    """The fixture is real StepView JSON, not a shape of our own."""
    for found in STEPS.values():
        StepView.model_validate(found)


def test_every_adapter_and_action_the_shipped_policy_emits_has_its_own_sentence():
    """Pairs from the shipped inventory (a safe mode's protocol sets it; a system's
    revocation; nftables for quarantine and isolation): each was recorded, and none falls
    back to the generic sentence. A new adapter in the inventory fails this test."""
    data = INVENTORY.data
    emitted = {(t["protocol"], "set") for t in data["device_types"].values() if t.get("safe_mode")}
    emitted |= {(s["adapter"], s["revocation"]["action"]) for s in data["systems"].values()}
    emitted |= {("nftables", "contain")}
    recorded = {(s["adapter"], s["action"]) for s in STEPS.values()}
    assert emitted <= recorded, emitted - recorded
    for found in STEPS.values():
        assert wording.plan_in_words(found) != wording.generic(found), found["id"]


def test_a_fallback_says_the_mode_it_sets_and_the_mode_it_leaves():
    assert (
        wording.plan_in_words(step("substation-rtu-writes", "fallback:rtu-e01"))
        == "set rtu-e01 to local_manual; was remote"
    )
    # An automatic step has no dry run: the mode recorded before apply says what it was.
    automatic = step("traffic-controller-compromise", "fallback:tsc-0001")
    assert automatic["preview"] is None
    assert wording.plan_in_words(automatic) == "set tsc-0001 to flash; was normal"
    assert (
        wording.plan_in_words(step("wazuh", "fallback:tram-ops-01"))
        == "set tram-ops-01 to degraded; was normal"
    )


def test_a_controller_already_in_its_safe_mode_is_said_so():
    """The splunk finding came after the firmware one had flashed tsc-0002."""
    assert (
        wording.plan_in_words(step("splunk", "fallback:tsc-0002"))
        == "set tsc-0002 to flash; already flash"
    )


def test_a_quarantine_names_the_host_its_address_and_the_firewall():
    assert (
        wording.plan_in_words(step("falco", "quarantine:permits-web-01"))
        == "quarantine permits-web-01 (198.18.40.20) at city-gw (nftables)"
    )


def test_an_automatic_quarantine_names_the_address_from_its_receipt():
    """No dry run is made for a step that needs no approval: the receipt's drop set says
    which address was cut off, and the firewall read back says the rules are there."""
    held = step("ocsf-crowdstrike", "quarantine:eng-ws-03")
    assert held["preview"] is None
    assert held["state"] == "verified"
    assert (
        wording.plan_in_words(held) == "quarantine eng-ws-03 (198.18.40.33) at city-gw (nftables)"
    )
    assert wording.readback_in_words(held) == "rules in place at city-gw (0 packets dropped)"
    gone = {**held, "verification": {**held["verification"], "ok": False, "detail": "set gone"}}
    assert wording.readback_in_words(gone) == "NOT as planned: set gone"


def test_a_zone_isolation_names_the_conduits_it_keeps_open():
    assert wording.plan_in_words(step("elastic", "isolate:energy")) == (
        "isolate zone energy (198.18.20.0/24) at city-gw (nftables), "
        "keeping dispatch-preemption, soc-mgmt open"
    )


def test_an_irreversible_revocation_says_it_cannot_be_undone():
    vault = step("shared-account-svc-scada", "revoke:svc-scada@vault-city")
    assert wording.plan_in_words(vault) == (
        "disable account svc-scada in vault-city, revoking 1 token(s) and 2 lease(s) "
        "(vault: cannot be undone)"
    )
    ldap = step("shared-account-svc-scada", "revoke:svc-scada@ldap-city")
    assert wording.plan_in_words(ldap) == "disable account svc-scada in ldap-city"


def test_one_account_on_several_systems_is_one_sentence():
    assert wording.grouped_in_words(RECORDED["shared-account-svc-scada"]) == [
        "disable account svc-scada in ldap-city, scim-idp, vault-city (vault: cannot be undone)"
    ]
    assert wording.grouped_in_words(RECORDED["sentinel"]) == [
        "quarantine scada-e01 (198.18.20.10) at city-gw (nftables)",
        "disable account svc-scada in ldap-city, scim-idp, vault-city (vault: cannot be undone)",
    ]


def test_the_value_read_back_is_said_and_a_mismatch_shouts():
    assert (
        wording.readback_in_words(step("traffic-controller-compromise", "fallback:tsc-0001"))
        == "mode flash (register reads back)"
    )
    assert wording.readback_in_words(step("substation-rtu-writes", "fallback:rtu-e01")) is None
    ldap = step("splunk", "revoke:svc-signals@ldap-city")
    said = wording.readback_in_words(ldap)
    assert said is not None
    assert said.startswith("as planned: ") and "bind rejected" in said
    wrong = {**ldap, "verification": {**ldap["verification"], "ok": False}}
    assert (wording.readback_in_words(wrong) or "").startswith("NOT as planned: ")
    tsc = step("traffic-controller-compromise", "fallback:tsc-0001")
    drifted = {
        **tsc,
        "verification": {
            "ok": False,
            "observed": {"mode": "normal", "value": 0},
            "detail": "register reads 0, expected 1",
        },
    }
    assert wording.readback_in_words(drifted) == (
        "mode normal, NOT as planned: register reads 0, expected 1"
    )


async def _planned(action: str, target: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """A step as the workflow shows it while it waits, with the real adapter's dry run
    (plan-only: no nft here, the rules and summary are exact all the same)."""
    adapter = NftablesAdapter(
        INVENTORY.network_topology(lab_gateway_netns="bt-words-gw"),
        nft=Nft(binary="/nonexistent/nft"),
    )
    command = StepCommand(
        incident_id="inc-w",
        step_id="s1",
        adapter="nftables",
        action=action,
        target=target,
        args=args,
    )
    plan = await adapter.plan(command)
    view = StepView(
        id="s1",
        adapter="nftables",
        action=action,
        target=target,
        args=args,
        state="awaiting_approval",
        preview=plan,
    )
    return view.model_dump(mode="json")


async def test_openc2_network_targets_are_said_in_the_adapters_own_words():
    connection = {
        "src_addr": "198.18.40.77",
        "dst_addr": "198.18.20.10",
        "protocol": "tcp",
        "dst_port": 502,
    }
    flow = await _planned("deny", {"ipv4_connection": connection}, {"timeout_s": 600})
    assert wording.plan_in_words(flow) == (
        "deny the connection from 198.18.40.77/32 to 198.18.20.10/32 tcp dport 502 in "
        "zone(s) energy, municipal-it at city-gw (nftables)"
    )
    net = await _planned("deny", {"ipv4_net": "198.18.20.0/28"}, {})
    assert (
        wording.plan_in_words(net) == "isolate 198.18.20.0/28 in zone energy at city-gw (nftables)"
    )
    kept = await _planned("contain", {"device": "scada-e01"}, {"allow": ["198.18.40.5/32"]})
    assert wording.plan_in_words(kept) == (
        "quarantine scada-e01 (198.18.20.10) at city-gw (nftables), keeping 198.18.40.5/32 open"
    )


@pytest.mark.parametrize(
    "odd",
    [
        {"adapter": "snmp", "action": "set", "target": {"oid": "1.3.6"}, "args": {}},
        {"adapter": "opcua", "action": "set", "target": {"asset": "rtu-e01"}},
        {"adapter": "nftables", "action": "contain", "target": "not a mapping", "preview": 3},
        {"adapter": "vault", "action": "deny", "target": {"identity": "x"}},
        {},
    ],
)
def test_an_unknown_or_odd_step_gets_a_generic_sentence_never_an_error(odd):
    said = wording.plan_in_words(odd)
    assert isinstance(said, str)
    assert said
    assert wording.readback_in_words({**odd, "verification": "garbled"}) is None
    assert wording.grouped_in_words([odd, odd]) == [said, said]


def test_an_unknown_adapter_names_its_action_target_and_adapter():
    said = wording.plan_in_words(
        {"adapter": "snmp", "action": "set", "target": {"oid": "1.3.6"}, "preview": None}
    )
    assert said == "set oid=1.3.6 (snmp)"
