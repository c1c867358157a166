"""The embedded regorus engine over the real policies, the policy input, and the inventory."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.decision import DecideRequest, Decision, Verdict
from contracts.findings import Finding
from orchestrator.config import DEFAULT_POLICY_DIR, REPO_ROOT
from orchestrator.policy.base import ENTRYPOINT
from orchestrator.policy.embedded import EmbeddedEngine, PolicyBundle, PolicyLoadError
from orchestrator.policy.input import containment_input
from orchestrator.policy.models import ContainmentInput
from orchestrator.policy.results import decision_from, decision_from_json
from orchestrator.wiring.inventory import Inventory

EXAMPLE = REPO_ROOT / "examples" / "findings" / "traffic-controller-compromise.json"
POLICY_FILE = Path("bulkhead") / "containment" / "containment.rego"
SHA256_HEX = re.compile(r"^sha256:[0-9a-f]{64}$")


def example_finding(**changes: Any) -> Finding:
    document = json.loads(EXAMPLE.read_text())
    document.update(changes)
    return Finding.model_validate(document)


def decide(
    engine: EmbeddedEngine,
    *findings: Finding,
    inventory: Inventory | None = None,
    paused: bool = False,
) -> Decision:
    request = DecideRequest(
        incident_id="inc-tsc-0001", findings=list(findings) or [example_finding()]
    )
    inventory = inventory or Inventory.load(DEFAULT_POLICY_DIR)
    return engine.decide(containment_input(request, inventory, automation_paused=paused))


def copy_policies(tmp_path: Path) -> Path:
    """The real policy directory, copied so a test may change it."""
    return Path(shutil.copytree(DEFAULT_POLICY_DIR, tmp_path / "policies"))


def policy_dir_with(tmp_path: Path, rego: str) -> Path:
    """A policy directory whose only module is `rego` (package bulkhead.containment)."""
    path = tmp_path / "policies" / POLICY_FILE
    path.parent.mkdir(parents=True)
    path.write_text("package bulkhead.containment\n\n" + rego)
    return tmp_path / "policies"


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine(DEFAULT_POLICY_DIR)


# --- the real policy -------------------------------------------------------------------------


def test_example_finding_is_contained_by_switching_the_controller_to_flash(engine):
    decision = decide(engine)
    assert decision.verdict is Verdict.CONTAIN
    (step,) = decision.steps
    assert step.id == "fallback:tsc-0001"
    assert step.adapter == "modbus"
    assert step.action == "set"
    assert step.target == {"asset": "tsc-0001"}
    assert step.args == {"mode": "flash"}
    assert step.approval.required == 0
    assert step.reversible is True
    assert step.lease_s == 3600
    assert "highest severity_id is 4" in decision.reasons


def test_policy_version_is_a_content_hash_stable_across_engines(engine):
    again = EmbeddedEngine(DEFAULT_POLICY_DIR)
    assert engine.version.startswith("sha256:")
    assert engine.version == again.version
    assert decide(engine).policy_version == engine.version


def test_each_decision_gets_a_fresh_decision_id(engine):
    first, second = decide(engine), decide(engine)
    assert first.decision_id != second.decision_id
    assert uuid.UUID(first.decision_id).version == 4


def test_input_digest_identifies_the_policy_input(engine):
    first, second = decide(engine), decide(engine)
    other = decide(engine, example_finding(severity_id=5))
    assert SHA256_HEX.match(first.input_digest)
    assert first.input_digest == second.input_digest
    assert other.input_digest != first.input_digest


def test_all_findings_low_confidence_are_observed_without_steps(engine):
    decision = decide(engine, example_finding(confidence_id=1), example_finding(confidence_id=1))
    assert decision.verdict is Verdict.OBSERVE
    assert decision.steps == []
    assert "every finding has low confidence" in decision.reasons


def test_one_confident_finding_among_low_ones_still_contains(engine):
    decision = decide(engine, example_finding(confidence_id=1), example_finding(confidence_id=3))
    assert decision.verdict is Verdict.CONTAIN


def test_medium_severity_on_a_known_asset_is_observed(engine):
    decision = decide(engine, example_finding(severity_id=3))
    assert decision.verdict is Verdict.OBSERVE
    assert decision.steps == []


def test_high_severity_on_an_unknown_asset_escalates(engine):
    stranger = example_finding(resources=[{"uid": "pump-9"}], evidences=[])
    decision = decide(engine, stranger)
    assert decision.verdict is Verdict.ESCALATE
    assert decision.steps == []


def test_paused_automation_makes_every_step_need_approval(engine):
    decision = decide(engine, paused=True)
    (step,) = decision.steps
    assert step.approval.required >= 1
    assert step.approval.roles == ["duty-officer", "responder"]
    assert "automation is paused: every step needs approval" in decision.reasons


def test_pause_flag_on_the_request_is_honoured(engine):
    request = DecideRequest(
        incident_id="inc-tsc-0001", findings=[example_finding()], automation_paused=True
    )
    policy = containment_input(request, Inventory.load(DEFAULT_POLICY_DIR))
    assert policy.document()["automation"] == {"paused": True}
    (step,) = engine.decide(policy).steps
    assert step.approval.required >= 1


def test_asset_in_an_essential_zone_needs_two_approvals(tmp_path):
    policies = copy_policies(tmp_path)
    inventory_path = policies / "data" / "inventory.json"
    data = json.loads(inventory_path.read_text())
    data["assets"]["tsc-0001"]["zone"] = "energy"
    inventory_path.write_text(json.dumps(data))
    engine = EmbeddedEngine(policies)

    decision = decide(engine, inventory=Inventory.load(policies))

    (step,) = decision.steps
    assert step.approval.required == 2
    assert step.approval.must_include_roles == ["duty-officer"]
    assert engine.version != EmbeddedEngine(DEFAULT_POLICY_DIR).version


# --- fail closed ----------------------------------------------------------------------------


def assert_escalates(decision: Decision, engine: EmbeddedEngine) -> str:
    """The fail-closed shape; returns the single reason for further checks."""
    assert decision.verdict is Verdict.ESCALATE
    assert decision.steps == []
    assert decision.policy_version == engine.version
    assert decision.decision_id
    assert SHA256_HEX.match(decision.input_digest)
    (reason,) = decision.reasons
    return reason


RUNTIME_ERRORS = {
    "divide-by-zero": 'decision := {"verdict": "observe", "n": 1 / (count(input.findings) - 1)}',
    "conflicting-values": (
        'decision := {"verdict": "observe"} if count(input.findings) > 0\n'
        'decision := {"verdict": "contain"} if count(input.assets) > 0\n'
    ),
    "bad-conversion": 'decision := {"verdict": "observe", "n": to_number(input.incident_id)}',
}


@pytest.mark.parametrize("rego", RUNTIME_ERRORS.values(), ids=RUNTIME_ERRORS.keys())
def test_policy_runtime_error_escalates(tmp_path, rego):
    engine = EmbeddedEngine(policy_dir_with(tmp_path, rego))
    reason = assert_escalates(decide(engine), engine)
    assert reason.startswith("policy error")


@pytest.mark.parametrize(
    ("rego", "says"),
    [
        (RUNTIME_ERRORS["divide-by-zero"], "divide by zero"),
        (RUNTIME_ERRORS["conflicting-values"], "conflicts"),
    ],
    ids=["divide-by-zero", "conflicting-values"],
)
def test_policy_error_reason_says_what_broke(tmp_path, rego, says):
    engine = EmbeddedEngine(policy_dir_with(tmp_path, rego))
    assert says in assert_escalates(decide(engine), engine)


def test_policy_without_a_decision_rule_escalates(tmp_path):
    engine = EmbeddedEngine(policy_dir_with(tmp_path, 'verdict := "contain"\n'))
    reason = assert_escalates(decide(engine), engine)
    assert reason.startswith("policy error")


def test_decision_undefined_for_this_input_escalates(tmp_path):
    rego = 'decision := {"verdict": "contain"} if input.automation.paused == "never"\n'
    engine = EmbeddedEngine(policy_dir_with(tmp_path, rego))
    assert assert_escalates(decide(engine), engine) == f"{ENTRYPOINT} is undefined"


def test_decision_that_is_not_an_object_escalates(tmp_path):
    engine = EmbeddedEngine(policy_dir_with(tmp_path, 'decision := "contain"\n'))
    assert_escalates(decide(engine), engine)


def test_decision_with_an_unknown_verdict_escalates_naming_the_problem(tmp_path):
    engine = EmbeddedEngine(policy_dir_with(tmp_path, 'decision := {"verdict": "nuke"}\n'))
    reason = assert_escalates(decide(engine), engine)
    assert reason.startswith("policy returned an invalid decision: 1 error(s)")
    assert reason.endswith("at verdict")


def test_decision_with_an_invalid_step_escalates_naming_the_field(tmp_path):
    rego = (
        'decision := {"verdict": "contain", "steps": '
        '[{"id": "s1", "action": "set", "target": {}}]}\n'
    )
    engine = EmbeddedEngine(policy_dir_with(tmp_path, rego))
    reason = assert_escalates(decide(engine), engine)
    assert reason.endswith("at steps/0/adapter")


def test_decision_cannot_override_the_engines_own_fields(tmp_path):
    """policy_version and decision_id come from the engine, whatever the policy says."""
    rego = 'decision := {"verdict": "observe", "policy_version": "forged", "decision_id": "x"}\n'
    engine = EmbeddedEngine(policy_dir_with(tmp_path, rego))
    decision = decide(engine)
    assert decision.verdict is Verdict.OBSERVE
    assert decision.policy_version == engine.version
    assert decision.decision_id != "x"


@pytest.mark.parametrize(
    "raw",
    [
        {"verdict": "observe", "reasons": ["r"], "steps": []},
        {"verdict": "observe", "input_digest": "forged"},
        {
            "verdict": "contain",
            "steps": [{"id": "s1", "adapter": "a", "action": "set", "target": {}}],
        },
        {"verdict": "nuke"},
        {},
        [],
        "<undefined>",
    ],
)
def test_a_decision_read_from_the_engines_text_is_the_one_read_from_its_json(raw):
    """The embedded engine validates its JSON text directly; it must answer, and word a
    refusal, exactly as decision_from does on the parsed value."""
    fields = {"policy_version": "v", "decision_id": 'd"\\é', "digest": "sha256:x"}
    text = json.dumps(raw, indent=2)
    assert decision_from_json(text, **fields) == decision_from(raw, **fields)


# --- loading --------------------------------------------------------------------------------


def test_syntax_error_is_a_load_error_naming_the_file(tmp_path):
    with pytest.raises(PolicyLoadError, match=r"^bulkhead/containment/containment\.rego:\d+:\d+: "):
        EmbeddedEngine(policy_dir_with(tmp_path, "decision := 1 if {\n"))


def test_syntax_error_message_says_what_is_wrong(tmp_path):
    with pytest.raises(PolicyLoadError) as caught:
        EmbeddedEngine(policy_dir_with(tmp_path, "decision := 1 if {\n"))
    assert "expecting expression" in str(caught.value)


def test_unparseable_data_is_a_load_error_naming_the_file(tmp_path):
    policies = copy_policies(tmp_path)
    (policies / "data" / "inventory.json").write_text('{"assets": ')
    with pytest.raises(PolicyLoadError, match=r"inventory\.json"):
        EmbeddedEngine(policies)


def test_missing_policy_directory_is_a_load_error(tmp_path):
    with pytest.raises(PolicyLoadError, match="does not exist"):
        EmbeddedEngine(tmp_path / "nowhere")


def test_policy_directory_without_rego_is_a_load_error(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(PolicyLoadError, match=r"no \.rego files"):
        EmbeddedEngine(tmp_path)


def test_rego_test_files_are_neither_loaded_nor_hashed(tmp_path):
    policies = copy_policies(tmp_path)
    # Not even valid Rego: loading it would raise.
    (policies / POLICY_FILE).with_name("containment_test.rego").write_text("this is { not rego")
    engine = EmbeddedEngine(policies)
    assert engine.version == EmbeddedEngine(DEFAULT_POLICY_DIR).version
    assert not any(name.endswith("_test.rego") for name in engine.bundle.modules)
    assert POLICY_FILE.as_posix() in engine.bundle.modules
    assert decide(engine).verdict is Verdict.CONTAIN


def test_policy_version_changes_with_any_module_or_data(tmp_path):
    base = PolicyBundle.read(DEFAULT_POLICY_DIR).version
    policies = copy_policies(tmp_path)
    (policies / "bulkhead" / "extra.rego").write_text("package bulkhead.extra\n\nx := 1\n")
    with_module = PolicyBundle.read(policies).version
    inventory = policies / "data" / "inventory.json"
    inventory.write_text(inventory.read_text() + "\n")
    with_data = PolicyBundle.read(policies).version
    assert len({base, with_module, with_data}) == 3


# --- policy input and inventory -------------------------------------------------------------


def test_policy_input_carries_resolved_assets_and_findings_without_raw_data():
    request = DecideRequest(
        incident_id="inc-tsc-0001", findings=[example_finding(raw_data='{"x": 1}')]
    )
    policy = containment_input(request, Inventory.load(DEFAULT_POLICY_DIR)).document()
    assert policy["incident_id"] == "inc-tsc-0001"
    assert policy["automation"] == {"paused": False}
    (asset,) = policy["assets"]
    assert asset["id"] == "tsc-0001"
    assert asset["zone"] == "traffic"
    (finding,) = policy["findings"]
    assert "raw_data" not in finding
    assert finding["severity_id"] == 4
    json.dumps(policy)  # the engine sends it as JSON


def test_inventory_resolves_assets_by_resource_uid():
    inventory = Inventory.load(DEFAULT_POLICY_DIR)
    named = example_finding(resources=[{"uid": "tsc-0002"}], evidences=[])
    assert inventory.asset_ids_for([named]) == ["tsc-0002"]


@pytest.mark.parametrize("side", ["src_endpoint", "dst_endpoint"])
def test_inventory_resolves_assets_by_evidence_endpoint_ip(side):
    inventory = Inventory.load(DEFAULT_POLICY_DIR)
    seen = example_finding(resources=[], evidences=[{side: {"ip": "198.18.10.13"}}])
    assert inventory.asset_ids_for([seen]) == ["tsc-0003"]


def test_inventory_ignores_unknown_resources_and_ips_and_dedupes():
    inventory = Inventory.load(DEFAULT_POLICY_DIR)
    first = example_finding(resources=[{"uid": "pump-9"}, {"uid": "tsc-0001"}])
    second = example_finding(
        resources=[{"uid": "tsc-0004"}], evidences=[{"src_endpoint": {"ip": "198.18.10.11"}}]
    )
    # The example names tsc-0001 both as resource and as the dst ip; 198.18.40.77 is unknown.
    assert inventory.asset_ids_for([first, second]) == ["tsc-0001", "tsc-0004"]


def test_inventory_maps_lab_endpoint_to_the_given_lab_host_and_port():
    devices = Inventory.load(DEFAULT_POLICY_DIR).modbus_devices(lab_host="10.9.8.7", lab_port=1502)
    assert sorted(devices) == ["tsc-0001", "tsc-0002", "tsc-0003", "tsc-0004"]
    device = devices["tsc-0003"]
    assert (device.asset, device.unit) == ("tsc-0003", 3)
    assert (device.host, device.port) == ("10.9.8.7", 1502)
    assert device.mode_register == 0
    assert device.value_of("flash") == 1


def test_inventory_uses_an_explicit_modbus_endpoint_and_skips_other_protocols():
    data = json.loads((DEFAULT_POLICY_DIR / "data" / "inventory.json").read_text())
    data["assets"]["tsc-0002"]["modbus"]["endpoint"] = "192.0.2.20:5020"
    data["device_types"]["camera"] = {"protocol": "onvif"}
    data["assets"]["cam-1"] = {"type": "camera", "modbus": {"unit": 9}}
    devices = Inventory(data).modbus_devices(lab_host="127.0.0.1", lab_port=15020)
    assert (devices["tsc-0002"].host, devices["tsc-0002"].port) == ("192.0.2.20", 5020)
    assert (devices["tsc-0001"].host, devices["tsc-0001"].port) == ("127.0.0.1", 15020)
    assert "cam-1" not in devices


# --- fail closed on odd inputs to the shipped policy -------------------------------------------


def demo_input() -> dict[str, Any]:
    case = DEFAULT_POLICY_DIR / "cases" / "traffic-controller-compromise.json"
    policy_input: dict[str, Any] = json.loads(case.read_text())["input"]
    return policy_input


def test_active_containment_count_that_is_not_a_number_never_reaches_the_policy(engine):
    """Refused by the typed input; and were it handed over, the policy itself would fail."""
    document = {**demo_input(), "active_containments": "ten"}
    with pytest.raises(ValidationError, match="active_containments"):
        ContainmentInput.model_validate(document)
    with pytest.raises(RuntimeError, match="expects numeric argument"):
        engine.evaluate(ENTRYPOINT, document)


def test_two_different_steps_under_one_id_escalate_instead_of_picking_one(engine):
    """The same asset id twice with different records: which step is meant is unknowable."""
    document = demo_input()
    twin = {**document["assets"][0], "type": "workstation", "ip": "198.18.10.99"}
    document["assets"].append({**twin, "type": "traffic_controller", "zone": "energy"})
    reason = assert_escalates(engine.decide(ContainmentInput.model_validate(document)), engine)
    assert reason.startswith("policy error")


def test_input_that_is_not_json_escalates(engine):
    """Where the model takes anything (an asset record's own fields), a value JSON cannot
    hold is an escalation, not an exception."""
    document = demo_input()
    document["assets"][0]["when"] = object()
    decision = engine.decide(ContainmentInput.model_validate(document))
    assert decision.verdict is Verdict.ESCALATE
    assert decision.reasons[0].startswith("policy input is not JSON")
