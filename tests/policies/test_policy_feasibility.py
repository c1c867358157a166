"""`bulkhead policy check` proves the decisions can be carried out: the inventory against the
adapters' contracts, and every step of the cases and of the inventory sweep put to the
adapter that would run it (its plan-time validation; no target, no root)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from contracts.decision import DecisionStep
from contracts.findings import SeverityId
from orchestrator.cli.main import main
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.check import check_bundle
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.feasibility import sweep_problems
from orchestrator.policy.planning import StepAdapters
from orchestrator.policy.sweep import sweep_inputs

WATER = {
    "description": "Water treatment and pumping",
    "cidrs": ["198.18.60.0/24"],
    "criticality": "high",
    "essential": False,
    "essential_services": [],
}
PUMP = {"name": "Pump 9", "zone": "water", "type": "server", "ip": "198.18.60.9"}


def edit_inventory(policies: Path, change: Any) -> None:
    path = policies / "data" / "inventory.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def add_water_and_pump(data: dict[str, Any]) -> None:
    data["zones"]["water"] = WATER
    data["assets"]["pump-9"] = PUMP


def check(capsys, policies: Path) -> tuple[int, str]:
    code = main(["policy", "check", "--policy-dir", str(policies)])
    return code, capsys.readouterr().out


def stage(out: str, name: str) -> str:
    """The lines of one stage of `policy check`'s text output."""
    start = out.index(f"{name:<11} ") - 6
    following = re.search(r"^(ok|FAIL|skip)  ", out[start + 6 :], re.M)
    end = start + 6 + following.start() if following else len(out)
    return out[start:end]


def test_the_shipped_policies_pass_every_feasibility_stage():
    report = check_bundle(PolicyBundle.read(DEFAULT_POLICY_DIR), rego_tests=False)
    by_name = {c.name: c for c in report.checks}
    assert by_name["inventory"].ok, by_name["inventory"].problems
    assert by_name["steps"].ok, by_name["steps"].problems
    assert "216 sweep input(s)" in by_name["steps"].detail


def test_a_zone_without_an_enforcement_point_fails_naming_it(policies, capsys):
    """The issue's water/pump-9 change: it passed check and failed during an incident."""
    edit_inventory(policies, add_water_and_pump)
    code, out = check(capsys, policies)
    assert code == 1
    inventory = stage(out, "inventory")
    assert inventory.startswith("FAIL  inventory")
    assert "      zone water (data/inventory.json)\n" in inventory
    assert "no enforcement point guards zone(s) water" in inventory
    assert "add one under network.enforcement_points in the inventory" in inventory
    steps = stage(out, "steps")
    assert "      sweep: asset pump-9\n" in steps
    assert re.search(
        r"quarantine:pump-9 \(nftables contain device=pump-9\): no enforcement point guards "
        r"zone\(s\) water.*\(findings of severity 4, 5, 6, 99 named by resource uid or ip\)",
        steps,
    )


def test_guarding_the_new_zone_makes_the_change_pass(policies, capsys):
    def guarded(data: dict[str, Any]) -> None:
        add_water_and_pump(data)
        data["network"]["enforcement_points"]["city-gw"]["zones"].append("water")

    edit_inventory(policies, guarded)
    code, out = check(capsys, policies)
    assert code == 0, out
    assert stage(out, "inventory").startswith("ok    inventory")


def test_the_inventory_problem_points_at_the_records_line(policies):
    edit_inventory(policies, add_water_and_pump)
    report = check_bundle(PolicyBundle.read(policies), rego_tests=False)
    (inventory,) = [c for c in report.checks if c.name == "inventory"]
    zone = next(p for p in inventory.problems if p.group.startswith("zone water"))
    lines = (policies / "data" / "inventory.json").read_text().splitlines()
    assert lines[zone.line - 1].strip() == '"water": {'


def test_an_asset_with_a_fallback_but_no_way_to_reach_it_is_named(policies):
    """A traffic controller without its `modbus` record: the modbus adapter does not know it."""
    edit_inventory(
        policies,
        lambda d: d["assets"].update(
            {"tsc-0009": {"zone": "traffic", "type": "traffic_controller", "ip": "198.18.10.19"}}
        ),
    )
    report = check_bundle(PolicyBundle.read(policies), rego_tests=False)
    problems = [p.describe() for c in report.checks for p in c.problems]
    assert any(
        "asset tsc-0009" in p
        and "fallback:tsc-0009 (modbus set flash): no Modbus device is known for target" in p
        and "the asset has no `modbus` record" in p
        for p in problems
    ), problems


def test_a_fallback_over_a_protocol_no_adapter_speaks_is_named(policies):
    def bacnet(data: dict[str, Any]) -> None:
        data["device_types"]["chiller"] = {
            "protocol": "bacnet",
            "modes": {"normal": 0, "off": 1},
            "safe_mode": "off",
        }
        data["assets"]["chiller-1"] = {"zone": "municipal-it", "type": "chiller"}

    edit_inventory(policies, bacnet)
    report = check_bundle(PolicyBundle.read(policies), rego_tests=False)
    (inventory,) = [c for c in report.checks if c.name == "inventory"]
    (problem,) = inventory.problems
    assert problem.group == "asset chiller-1 (data/inventory.json)"
    assert "no adapter 'bacnet' exists (adapters: http, ldap, modbus" in problem.message


def test_an_identity_holder_without_a_connection_record_is_named(policies):
    edit_inventory(policies, lambda d: d["systems"]["scim-idp"].pop("connection"))
    report = check_bundle(PolicyBundle.read(policies), rego_tests=False)
    (inventory,) = [c for c in report.checks if c.name == "inventory"]
    groups = {p.group.split(" (")[0] for p in inventory.problems}
    assert groups == {"identity svc-scada", "identity svc-permits"}  # the two scim-idp holds
    assert all(
        "held by scim-idp, which has no connection record" in p.message for p in inventory.problems
    )
    (steps,) = [c for c in report.checks if c.name == "steps"]
    assert any("no SCIM system is known for target" in p.message for p in steps.problems)


def test_an_asset_whose_address_lies_in_another_zone_is_named(policies):
    edit_inventory(policies, lambda d: d["assets"]["eng-ws-03"].update(ip="198.18.10.33"))
    report = check_bundle(PolicyBundle.read(policies), rego_tests=False)
    messages = [p.message for c in report.checks for p in c.problems]
    assert (
        "ip 198.18.10.33 lies in zone traffic, but the asset says zone municipal-it: the "
        "guardrails would judge one zone while the firewall cuts in the other"
    ) in messages


def test_an_enforcement_point_guarding_a_misspelt_zone_is_named(policies):
    edit_inventory(
        policies,
        lambda d: d["network"]["enforcement_points"]["city-gw"]["zones"].append("wter"),
    )
    report = check_bundle(PolicyBundle.read(policies), rego_tests=False)
    messages = [p.message for c in report.checks for p in c.problems]
    assert any(
        m.startswith("guards zone 'wter', which the inventory does not have") for m in messages
    )


def test_an_essential_service_without_probes_is_named_unguarded(policies):
    edit_inventory(policies, lambda d: d["services"]["emergency-dispatch"].pop("probes"))
    report = check_bundle(PolicyBundle.read(policies), rego_tests=False)
    (inventory,) = [c for c in report.checks if c.name == "inventory"]
    assert [p.describe() for p in inventory.problems] == [
        "service emergency-dispatch (data/inventory.json):"
        f"{inventory.problems[0].line}: is essential but has no probes: the guard cannot see "
        "it degrade, so no step touching zone dispatch is rolled back for it"
    ]


def test_a_probe_the_guard_cannot_read_is_named(policies):
    edit_inventory(
        policies,
        lambda d: d["services"]["power-distribution"]["probes"].append({"kind": "ping"}),
    )
    report = check_bundle(PolicyBundle.read(policies), rego_tests=False)
    messages = [p.message for c in report.checks for p in c.problems]
    assert (
        "probes[1]: probe.kind: expected one of ['http', 'modbus', 'tcp'], got 'ping'" in messages
    )


def test_a_policy_step_its_adapter_refuses_fails_naming_case_step_and_reason(policies):
    """A misspelt argument: nftables refuses unknown args rather than drop the conduits."""
    steps_rego = policies / "bulkhead" / "containment" / "steps.rego"
    steps_rego.write_text(
        steps_rego.read_text().replace(
            '"args": {"allow": conduit_ids,', '"args": {"alow": conduit_ids,'
        )
    )
    report = check_bundle(PolicyBundle.read(policies), rego_tests=False)
    (steps,) = [c for c in report.checks if c.name == "steps"]
    described = [p.describe() for p in steps.problems]
    assert (
        "cases/scada-critical-energy-isolation.json: isolate:energy (nftables contain "
        "zone=energy): unknown args ['alow'] (allowed: ['allow', 'timeout_s'])"
    ) in described
    assert any(d.startswith("sweep: asset cad-01: isolate:dispatch (") for d in described)


def test_a_rego_error_in_the_sweep_is_reported_not_escalated_silently(policies):
    """The engine would turn it into an escalation at run time; check names it first."""
    steps_rego = policies / "bulkhead" / "containment" / "steps.rego"
    steps_rego.write_text(
        steps_rego.read_text().replace('"lease_s": lease_s.quarantine,', '"lease_s": 1 / 0,')
    )
    bundle = PolicyBundle.read(policies)
    adapters = StepAdapters.from_inventory(bundle.data["inventory"])
    problems, _ = sweep_problems(
        bundle.data["inventory"], EmbeddedEngine.from_bundle(bundle), adapters
    )
    assert any(
        p.group == "sweep: asset eng-ws-03" and p.message.startswith("the policy fails: ")
        for p in problems
    ), problems


def test_the_sweep_names_every_asset_and_identity_at_every_severity():
    inventory = json.loads((DEFAULT_POLICY_DIR / "data" / "inventory.json").read_text())
    swept = list(sweep_inputs(inventory))
    subjects = {s.subject for s in swept}
    assert subjects == {f"asset {a}" for a in inventory["assets"]} | {
        f"identity {i}" for i in inventory["identities"]
    }
    by_ip = [s for s in swept if s.subject == "asset eng-ws-03" and s.naming == "ip"]
    assert {s.severity_id for s in by_ip} == {int(v) for v in SeverityId}
    # Named by its address only, as a SIEM's source IP names it: enrichment finds the asset.
    assert [a.id for a in by_ip[0].policy_input.assets] == ["eng-ws-03"]


def test_a_step_for_an_adapter_that_does_not_exist_is_refused():
    adapters = StepAdapters.from_inventory(
        json.loads((DEFAULT_POLICY_DIR / "data" / "inventory.json").read_text())
    )
    step = DecisionStep(id="x", adapter="bacnet", action="set", target={"asset": "x"})
    assert adapters.refusal(step) == (
        "no adapter 'bacnet' exists (adapters: http, ldap, modbus, nftables, opcua, scim, vault)"
    )


def test_check_json_is_one_document_with_every_stage_and_its_problems(policies, capsys):
    edit_inventory(policies, add_water_and_pump)
    code = main(["policy", "check", "--policy-dir", str(policies), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert document["ok"] is False
    stages = {s["stage"]: s for s in document["stages"]}
    assert list(stages) == [
        "compile",
        "data",
        "data keys",
        "cases",
        "inventory",
        "steps",
        "rego tests",
        "schemas",
    ]
    assert stages["inventory"]["status"] == "fail"
    assert {
        "group": "zone water (data/inventory.json)",
        "line": stages["inventory"]["problems"][0]["line"],
        "message": "network steps on it (nftables): no enforcement point guards zone(s) water: "
        "add one under network.enforcement_points in the inventory",
    } in stages["inventory"]["problems"]
    assert stages["cases"]["status"] == "ok"
