"""The CACAO 2.0 export of incidents built by hand (tests/cacao_views.py).

No registry ships the CACAO 2.0 JSON schemas, and the official ones live only on GitHub,
so each export is held to the specification's required properties twice: by the table
below, transcribed from the specification, and by `playbook check`, whose own tests use
playbooks written from the specification. (The official schemas, run by hand against
these four exports, found nothing either.)
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from cacao_spec import spec_problems
from cacao_views import ALL, identity_revoked, lab_addresses, modbus_contained, quarantine_awaiting
from cacao_views import failed_and_rolled_back as failed_view

from contracts.incident import IncidentView
from orchestrator.standards.cacao import playbook
from orchestrator.standards.cacao_check import check


def export(view: IncidentView, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("addresses", lab_addresses())
    document = playbook(view, **kwargs)
    assert spec_problems(document) == []
    assert [p.line() for p in check(document)] == []
    return document


def steps(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The workflow's steps by name (`<bulkhead step>: apply`, ...)."""
    return {s["name"]: s for s in document["workflow"].values()}


def openc2(command: dict[str, Any]) -> dict[str, Any]:
    assert command["type"] == "openc2-http"
    assert command["command"] == "POST /v1/openc2 HTTP/1.1"
    decoded: dict[str, Any] = json.loads(base64.b64decode(command["content_b64"]))
    return decoded


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_export_has_the_required_properties_and_passes_the_check(name):
    document = export(ALL[name]())
    assert document["type"] == "playbook"
    assert document["spec_version"] == "cacao-2.0"
    assert document["created_by"].startswith("identity--")
    start = document["workflow"][document["workflow_start"]]
    assert start["type"] == "start"


def test_the_same_incident_exports_the_same_playbook_and_ids():
    first, again = export(quarantine_awaiting()), export(quarantine_awaiting())
    assert first == again
    other = export(modbus_contained())
    assert first["id"] != other["id"]
    assert uuid.UUID(first["id"].removeprefix("playbook--")).version == 5
    # §10.10: step objects MUST use UUIDv4.
    versions = {uuid.UUID(key.split("--")[1]).version for key in first["workflow"]}
    assert versions == {4}


def test_an_automatic_modbus_fallback_is_manual_with_its_lease_and_its_undo():
    document = export(modbus_contained())
    named = steps(document)
    apply = named["fallback:tsc-0001: apply"]
    assert [c["type"] for c in apply["commands"]] == ["manual"]  # no OpenC2 profile has it
    assert "safe mode flash" in apply["commands"][0]["command"]
    assert "fallback:tsc-0001: approval" not in named  # automatic: no gate
    workflow = document["workflow"]
    assert workflow[workflow[document["workflow_start"]]["on_completion"]] is apply
    revert = document["workflow"][apply["on_success"]]
    assert revert["delay"] == 3_600_000  # the lease, in milliseconds
    assert "mode=normal" in revert["commands"][0]["command"]  # the recorded rollback intent
    rollback = document["workflow"][apply["on_failure"]]
    assert rollback["name"] == "fallback:tsc-0001: roll back"
    assert "delay" not in rollback
    target = document["target_definitions"][apply["targets"][0]]
    assert target["type"] == "net-address"
    assert target["address"] == {"ipv4": ["198.18.10.11"]}
    assert document["created"] == "2026-12-02T16:00:00.000Z"  # the finding
    assert document["modified"] == "2026-12-02T16:00:02.125Z"  # the latest audit entry


def test_a_quarantine_awaiting_two_approvers_is_a_gate_naming_the_roles():
    document = export(quarantine_awaiting())
    workflow, named = document["workflow"], steps(document)
    parallel = workflow[workflow[document["workflow_start"]]["on_completion"]]
    assert parallel["type"] == "parallel"
    gate = named["quarantine:eng-ws-03: approval"]
    assert parallel["next_steps"][0] == next(k for k, v in workflow.items() if v is gate)
    text = gate["commands"][0]["command"]
    assert gate["commands"][0]["type"] == "manual"
    assert "2 approval(s)" in text
    assert "responder or duty-officer" in text
    assert "one of them holding duty-officer" in text
    assert gate["timeout"] == 600_000  # the approval timeout, in milliseconds
    assert "alice (responder)" in gate["description"]
    assert "deadline 2026-12-02T16:10:02+00:00" in gate["description"]
    approvers = document["agent_definitions"][gate["agent"]]
    assert approvers["type"] == "group"
    assert "duty-officer" in approvers["name"]
    apply = workflow[gate["on_success"]]
    assert apply is named["quarantine:eng-ws-03: apply"]
    assert workflow[gate["on_failure"]]["type"] == "end"  # denied or expired: nothing applied
    (deny,) = [openc2(c) for c in apply["commands"]]
    assert deny["action"] == "deny"
    assert deny["target"] == {"ipv4_net": "198.18.40.33/32"}
    assert deny["actuator"] == {"slpf": {}}
    assert deny["args"]["duration"] == 1_800_000
    assert deny["args"]["response_requested"] == "complete"  # SLPF §2.3.2 with insert_rule
    revert = workflow[apply["on_success"]]
    (delete,) = [openc2(c) for c in revert["commands"]]
    assert delete["action"] == "delete"
    assert delete["target"] == {"slpf:rule_number": deny["args"]["slpf"]["insert_rule"]}
    consumer = document["agent_definitions"][apply["agent"]]
    assert consumer["type"] == "http-api"


def test_a_zone_isolation_keeps_its_conduits_open_before_it_denies_the_zone():
    named = steps(export(quarantine_awaiting()))
    commands = [openc2(c) for c in named["isolate:municipal-it: apply"]["commands"]]
    assert [c["action"] for c in commands] == ["allow"] * 4 + ["deny"]
    pairs = {
        (c["target"]["ipv4_connection"]["src_addr"], c["target"]["ipv4_connection"]["dst_addr"])
        for c in commands[:4]
    }
    zone = "198.18.40.0/24"
    conduits = ("198.18.40.5/32", "198.18.50.10/32")
    assert pairs == {(c, zone) for c in conduits} | {(zone, c) for c in conduits}
    rules = [c["args"]["slpf"]["insert_rule"] for c in commands]
    assert rules == sorted(rules)  # the allows come first in a top-down list
    assert commands[-1]["target"] == {"ipv4_net": zone}


def test_each_parallel_branch_ends_in_its_own_end_step():
    document = export(quarantine_awaiting())
    workflow = document["workflow"]
    parallel = workflow[workflow[document["workflow_start"]]["on_completion"]]
    ends = []
    for head in parallel["next_steps"]:
        seen, todo = set(), [head]
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            step = workflow[key]
            todo += [step[p] for p in ("on_success", "on_failure", "on_completion") if p in step]
        ends.append({k for k in seen if workflow[k]["type"] == "end"})
    assert all(len(e) == 1 for e in ends)
    assert ends[0] != ends[1]
    assert workflow[parallel["on_completion"]]["type"] == "end"


def test_an_identity_revocation_is_er_set_account_disabled_and_enabled_to_undo():
    document = export(identity_revoked())
    named = steps(document)
    ldap = named["revoke:svc-scada@ldap-city: apply"]
    (disable,) = [openc2(c) for c in ldap["commands"]]
    assert disable["action"] == "set"
    assert disable["target"] == {"er": {"account": {"account_name": "svc-scada"}}}
    assert disable["args"]["er"]["account_status"] == "disabled"
    # ER §2.3.8.4: a producer MUST populate er:downstream_device with set er:account.
    assert disable["args"]["er"]["downstream_device"] == {"device_groups": ["ldap-city"]}
    assert disable["actuator"] == {"er": {}}
    (enable,) = [openc2(c) for c in document["workflow"][ldap["on_success"]]["commands"]]
    assert enable["args"]["er"]["account_status"] == "enabled"


def test_an_irreversible_revocation_has_no_revert_and_no_roll_back():
    document = export(identity_revoked())
    named = steps(document)
    vault = named["revoke:svc-scada@vault-city: apply"]
    assert document["workflow"][vault["on_success"]]["type"] == "end"
    assert vault["on_failure"] == vault["on_success"]
    assert "Cannot be undone" in vault["description"]
    assert not any(name.startswith("revoke:svc-scada@vault-city: r") for name in named)


def test_a_failed_step_leads_to_its_roll_back():
    document = export(failed_view())
    named = steps(document)
    apply = named["fallback:tsc-0002: apply"]
    rollback = document["workflow"][apply["on_failure"]]
    assert rollback is named["fallback:tsc-0002: roll back"]
    assert rollback["commands"][0]["playbook_activity"] == "revert-system"
    assert document["workflow"][rollback["on_completion"]]["type"] == "end"
    assert "rolled_back" in apply["description"]
    assert "verification failed" in apply["description"]
    assert document["modified"] == "2026-12-02T16:00:04.500Z"


def test_without_the_inventory_network_steps_are_manual_commands():
    document = export(quarantine_awaiting(), addresses=None)
    apply = steps(document)["quarantine:eng-ws-03: apply"]
    assert [c["type"] for c in apply["commands"]] == ["manual"]
    assert "device=eng-ws-03" in apply["commands"][0]["command"]
    assert "target_definitions" not in document


def test_an_incident_without_steps_is_still_a_valid_playbook():
    view = modbus_contained().model_copy(update={"steps": [], "decision": None})
    document = export(view)
    assert [s["type"] for s in document["workflow"].values()] == ["start", "action", "end"]
    assert document["playbook_types"] == ["investigation"]
