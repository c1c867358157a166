"""The OpenC2 consumer's reading of commands: the specs' own examples parse, each is
carried out or answered with the status its profile asks for, and a command travels into
an incident as a finding no SIEM can forge."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from contracts.decision import DecideRequest
from contracts.findings import Finding
from contracts.incident import Principal, StepState, StepView
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.ingest.raw_store import FileRawStore, check_in
from orchestrator.policy.input import containment_input
from orchestrator.standards.openc2 import Addresses, equivalent
from orchestrator.standards.openc2_carry import carried_command, finding_of, split_commands
from orchestrator.standards.openc2_command import CommandError, parse_command, response_type, unwrap
from orchestrator.standards.openc2_consumer import (
    Proposal,
    Query,
    Translator,
    Undo,
    pairs,
    rule_number,
)
from orchestrator.wiring.inventory import Inventory

SPEC = json.loads((Path(__file__).parents[2] / "fixtures/openc2/spec-examples.json").read_text())
EXAMPLES = {name: command for name, command in SPEC.items() if not name.startswith("_")}
INVENTORY = Inventory.load(DEFAULT_POLICY_DIR)
SOAR = Principal(id="local:soar", name="soar", roles=["openc2-producer"])
NOW = int(time.time() * 1000)


def translate(command: dict[str, Any]) -> Any:
    return Translator(INVENTORY.data).translate(parse_command(command), SOAR, now_ms=NOW)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_of_the_specs_is_a_well_formed_command(name):
    parsed = parse_command(EXAMPLES[name])
    assert parsed.action == EXAMPLES[name]["action"]


# What Bulkhead answers each of them with, and why (the status text's first words).
OUTCOMES = {
    "slpf-a.1.1-deny-connection": (400, "args: the command's time is over"),  # 2018 + 500 ms
    "slpf-a.1.2-deny-outbound-ftp": (501, "Option not supported: direction"),
    "slpf-a.1.3-deny-ipv6-source": (501, "Target type not supported"),
    "slpf-a.1.4-allow-ftp": (501, "Target type not supported"),
    "slpf-a.3-update-file": (501, "Command not supported"),
    "er-e.1.1-deny-file": (501, "Command not supported"),
    "er-e.1.2-isolate-endpoint": (500, "Cannot access device"),
    "er-e.1.x-isolate-with-permitted": (500, "Cannot access device"),
    "er-e.1.3-allow-app-execution": (500, "Cannot access device"),
    "er-e.2.1-enable-account": (500, "Cannot access account"),
    "er-e.2.1-disable-accounts": (500, "Cannot access account"),
}


@pytest.mark.parametrize(("name", "expected"), sorted(OUTCOMES.items()))
def test_each_example_gets_the_status_its_profile_asks_for(name, expected):
    with pytest.raises(CommandError) as refused:
        translate(EXAMPLES[name])
    assert (refused.value.status, refused.value.text[: len(expected[1])]) == expected


def test_queries_and_the_delete_of_a_rule_are_understood():
    assert translate(EXAMPLES["slpf-a.4.4-query-pairs"]) == Query(["pairs"])
    assert translate(EXAMPLES["slpf-a.2-delete-rule"]) == Undo(rule_number=1234)
    assert translate(EXAMPLES["ls-4.2.2-query-features"]).features[0] == "versions"


def test_the_specs_examples_on_the_lab_city_become_proposals():
    deny = translate(
        {"action": "deny", "target": {"ipv4_net": "198.18.40.33"}, "args": {"duration": 60000}}
    )
    assert isinstance(deny, Proposal)
    assert (deny.entity, deny.kind, deny.zone, deny.command.lease_s) == (
        "eng-ws-03",
        "asset",
        "municipal-it",
        60,
    )
    (step,) = deny.command.steps
    assert (step.id, step.target, step.zones, step.whole_zones) == (
        "deny:198.18.40.33_32",
        {"ipv4_net": "198.18.40.33/32"},
        ["municipal-it"],
        [],
    )
    account = translate(
        {
            "action": "set",
            "target": {"er:account": {"account_name": "svc-scada"}},
            "args": {"er": {"account_status": "disabled"}},
        }
    )
    assert [s.id for s in account.command.steps] == [
        "revoke:svc-scada@ldap-city",
        "revoke:svc-scada@scim-idp",
        "revoke:svc-scada@vault-city",
    ]
    assert [s.reversible for s in account.command.steps] == [True, True, False]
    only_ldap = translate(
        {
            "action": "set",
            "target": {"er": {"account": {"account_name": "svc-scada"}}},
            "args": {
                "er": {
                    "account_status": "disabled",
                    "downstream_device": {"device_groups": ["ldap-city"]},
                }
            },
        }
    )
    assert [s.id for s in only_ldap.command.steps] == ["revoke:svc-scada@ldap-city"]


def test_a_whole_zone_is_marked_so_the_policy_can_refuse_an_essential_one():
    energy = translate({"action": "deny", "target": {"ipv4_net": "198.18.20.0/24"}})
    assert energy.command.steps[0].whole_zones == ["energy"]
    assert energy.entity == "198.18.20.0/24"


def test_the_export_and_the_consumer_agree_the_undo_of_a_revocation_is_enabled():
    enable = translate(
        {
            "action": "set",
            "target": {"er": {"account": {"account_name": "svc-scada"}}},
            "args": {"er": {"account_status": "enabled"}},
        }
    )
    assert enable == Undo(
        entity="svc-scada",
        step_ids=(
            "revoke:svc-scada@ldap-city",
            "revoke:svc-scada@scim-idp",
            "revoke:svc-scada@vault-city",
        ),
    )


def test_pairs_merge_the_profiles_without_repeating_query():
    assert pairs()["query"] == ["features"]


@pytest.mark.parametrize(
    ("content_type", "answer"),
    [
        ("application/openc2+json;version=1.0", "application/openc2+json;version=1.0"),
        ("Application/OpenC2+JSON; version=1.0", "application/openc2+json;version=1.0"),
        ("application/openc2+json", "application/openc2+json;version=1.0"),
        ("application/openc2-cmd+json;version=1.0", "application/openc2-rsp+json;version=1.0"),
        ("application/openc2+json;version=2.0", None),
        ("application/json", None),
    ],
)
def test_media_types(content_type, answer):
    assert response_type(content_type) == answer


def test_a_message_without_command_id_takes_its_request_id():
    """LS §3.3.1: with no command_id, the message's request_id is the command's id."""
    message = {
        "headers": {"request_id": "r-1"},
        "body": {"openc2": {"request": EXAMPLES["slpf-a.2-delete-rule"]}},
    }
    command, envelope = unwrap(message, header_request_id="x-9")
    assert envelope is not None and envelope.request_id == "r-1"
    assert parse_command(command, request_id=envelope.request_id).command_id == "r-1"


# --- the command as a finding ---------------------------------------------------------------


def commanded_finding() -> Finding:
    proposal = translate(
        {"action": "deny", "target": {"ipv4_net": "198.18.40.33"}, "command_id": "c-7"}
    )
    return finding_of(
        proposal.command,
        entity=proposal.entity,
        kind=proposal.kind,
        zone=proposal.zone,
        title="t",
        now_ms=NOW,
    )


def test_a_command_rides_in_its_finding_and_is_the_policys_input_command():
    finding = commanded_finding()
    siem = Finding.model_validate(
        {
            "finding_info": {"uid": "det-1", "title": "x"},
            "severity_id": 4,
            "confidence_id": 3,
            "time": NOW,
            "resources": [{"uid": "eng-ws-03"}],
            "metadata": {"product": {"name": "EDR"}},
        }
    )
    assert finding.resources[0].uid == "eng-ws-03"  # the incident key, as for any finding
    assert carried_command(finding) is not None
    policy_input = containment_input(
        DecideRequest(incident_id="inc-eng-ws-03", findings=[siem, finding]), INVENTORY
    )
    document = policy_input.document()
    assert [f["finding_info"]["uid"] for f in document["findings"]] == ["det-1"]
    assert document["command"]["producer"] == {
        "id": "local:soar",
        "name": "soar",
        "roles": ["openc2-producer"],
    }
    assert document["command"]["steps"][0]["id"] == "deny:198.18.40.33_32"
    assert (
        "command"
        not in containment_input(
            DecideRequest(incident_id="i", findings=[siem]), INVENTORY
        ).document()
    )


def test_a_siem_cannot_forge_a_command_its_raw_payload_goes_to_the_store(tmp_path):
    """Every webhook finding's raw_data leaves for the raw store before Temporal sees it."""
    forged = commanded_finding()
    (stored,) = check_in(FileRawStore(tmp_path), [forged])
    assert stored.raw_data is None and stored.raw_ref is not None
    assert carried_command(stored) is None
    assert split_commands([stored]) == ([stored], None)


def test_the_cacao_export_writes_a_commanded_step_back_with_the_rule_number_answered():
    """Round trip: the export's delete names the rule the consumer gave the producer."""
    flow = {"src_addr": "198.18.40.33/32", "dst_addr": "198.18.10.11/32", "protocol": "tcp"}
    step = StepView(
        id="deny-flow:0a1b2c3d4e5f",
        adapter="nftables",
        action="deny",
        target={"ipv4_connection": flow},
        args={"timeout_s": 600},
        state=StepState.VERIFIED,
        lease_s=600,
    )
    found = equivalent("inc-eng-ws-03", step, Addresses())
    assert found is not None
    (deny,) = found.apply
    number = rule_number("inc-eng-ws-03", step.id)
    assert deny["target"] == {"ipv4_connection": flow}
    assert deny["args"] == {
        "response_requested": "complete",
        "slpf": {"insert_rule": number},
        "duration": 600_000,
    }
    assert found.undo[0]["target"] == {"slpf:rule_number": number}
