"""The policy boundary as a contract: schemas match the models, cases hold, data validates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from contracts.decision import DecideRequest, Decision
from contracts.findings import Finding
from orchestrator.cli.main import main
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.policy import schemas
from orchestrator.policy.bundle import PolicyBundle, PolicyLoadError
from orchestrator.policy.check import check_bundle
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.input import containment_input
from orchestrator.policy.models import (
    AuthorizationInput,
    ContainmentInput,
    GuardrailsDocument,
    InventoryDocument,
    PolicyCase,
)
from orchestrator.wiring.inventory import Inventory

SCHEMA_DIR = DEFAULT_POLICY_DIR / "schemas"
CASES = sorted((DEFAULT_POLICY_DIR / "cases").glob("*.json"))
EXAMPLE = DEFAULT_POLICY_DIR.parent / "examples" / "findings" / "traffic-controller-compromise.json"


def copy_policies(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_POLICY_DIR, tmp_path / "policies"))


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine(DEFAULT_POLICY_DIR)


# --- schemas ---------------------------------------------------------------------------------


def test_schemas_in_policies_match_the_pydantic_models():
    """Fails on drift; `bulkhead policy schemas --write` regenerates them."""
    assert schemas.stale(SCHEMA_DIR) == []


def test_schema_drift_is_detected_and_write_repairs_it(tmp_path, capsys):
    policies = copy_policies(tmp_path)
    (policies / "schemas" / "decision.schema.json").write_text("{}\n")
    assert main(["policy", "schemas", "--policy-dir", str(policies)]) == 1
    assert "stale:" in capsys.readouterr().out
    assert main(["policy", "schemas", "--policy-dir", str(policies), "--write"]) == 0
    assert schemas.stale(policies / "schemas") == []


def test_every_schema_is_a_json_schema_of_the_2020_12_draft():
    for name in schemas.MODELS:
        document = json.loads((SCHEMA_DIR / name).read_text())
        assert document["$schema"] == schemas.DRAFT
        assert document["type"] == "object"


# --- cases -----------------------------------------------------------------------------------


def test_there_are_cases_for_every_guardrail():
    names = {path.stem for path in CASES}
    assert {
        "traffic-controller-compromise",
        "paused-needs-approval",
        "over-blast-radius-budget",
        "scada-critical-energy-isolation",
        "shared-identity-svc-scada",
        "low-confidence-observed",
        "unknown-asset-escalates",
    } <= names


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_input_validates_and_its_decision_is_the_expected_one(path, engine):
    raw = json.loads(path.read_text())
    case = PolicyCase.model_validate(raw)
    decision = engine.decide(case.input)
    assert decision.verdict == case.expected.verdict
    assert decision.steps == case.expected.steps
    assert set(case.expected.reasons_include) <= set(decision.reasons)


def test_a_case_whose_expectation_breaks_fails_the_check_naming_the_change(tmp_path):
    policies = copy_policies(tmp_path)
    case_path = policies / "cases" / "traffic-controller-compromise.json"
    case = json.loads(case_path.read_text())
    case["expected"]["steps"][0]["approval"]["required"] = 2
    case_path.write_text(json.dumps(case))
    report = check_bundle(PolicyBundle.read(policies), rego_tests=False)
    assert not report.ok
    (problem,) = report.problems()
    assert "~ fallback:tsc-0001 approval: 2 approval(s) from any approver" in problem
    assert problem.endswith("900 s then escalate → automatic (expected → actual)")


def test_every_case_decision_validates_against_the_decision_schema_model(engine):
    for path in CASES:
        decision = engine.decide(PolicyCase.model_validate_json(path.read_text()).input)
        Decision.model_validate_json(decision.model_dump_json())


# --- inputs and data -------------------------------------------------------------------------


def test_built_policy_input_validates_against_the_input_model():
    finding = Finding.model_validate(json.loads(EXAMPLE.read_text()))
    request = DecideRequest(incident_id="inc-tsc-0001", findings=[finding])
    policy_input = containment_input(
        request, Inventory.load(DEFAULT_POLICY_DIR), active_containments=3
    )
    parsed = ContainmentInput.model_validate(policy_input.document())
    assert parsed.active_containments == 3
    assert "raw_data" not in policy_input.document()["findings"][0]


def test_shared_identity_named_by_an_evidence_user_is_resolved_with_its_holders():
    document = json.loads(EXAMPLE.read_text())
    document["evidences"] = [{"user": {"name": "svc-scada"}}]
    request = DecideRequest(incident_id="i", findings=[Finding.model_validate(document)])
    policy_input = containment_input(request, Inventory.load(DEFAULT_POLICY_DIR))
    (identity,) = policy_input.identities
    assert identity.id == "svc-scada"
    assert identity.holders == ["ldap-city", "scim-idp", "vault-city"]


def test_shipped_data_documents_validate():
    bundle = PolicyBundle.read(DEFAULT_POLICY_DIR)
    inventory = InventoryDocument.model_validate(bundle.data["inventory"])
    GuardrailsDocument.model_validate(bundle.data["guardrails"])
    assert {"traffic", "energy", "transit", "municipal-it", "dispatch"} <= set(inventory.zones)
    assert all(str(c).startswith("198.1") for z in inventory.zones.values() for c in z.cidrs)


def test_lab_controllers_are_unchanged_for_the_demo():
    assets = json.loads((DEFAULT_POLICY_DIR / "data" / "inventory.json").read_text())["assets"]
    for unit in range(1, 5):
        record = assets[f"tsc-000{unit}"]
        assert record["modbus"] == {"endpoint": "lab", "unit": unit}
        assert record["zone"] == "traffic"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d["assets"]["tsc-0001"].update(zone="harbour"), "unknown zone 'harbour'"),
        (lambda d: d["identities"]["svc-scada"]["holders"].append("mainframe"), "mainframe"),
        (
            lambda d: d["zones"]["energy"].update(cidrs=["198.18.20.1/24"]),
            "not a valid IPv4 network",
        ),
    ],
    ids=["asset-zone", "identity-holder", "bad-cidr"],
)
def test_inventory_with_a_broken_reference_is_a_load_error(tmp_path, change, says):
    policies = copy_policies(tmp_path)
    path = policies / "data" / "inventory.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(PolicyLoadError, match=says):
        EmbeddedEngine(policies)


def test_guardrails_missing_a_value_is_a_load_error(tmp_path):
    policies = copy_policies(tmp_path)
    path = policies / "data" / "guardrails.json"
    data = json.loads(path.read_text())
    del data["blast_radius"]
    path.write_text(json.dumps(data))
    with pytest.raises(PolicyLoadError, match=r"guardrails\.json: blast_radius"):
        EmbeddedEngine(policies)


def test_authorization_input_model_accepts_what_the_api_sends():
    AuthorizationInput.model_validate(
        {
            "action": "approve",
            "principal": {"name": "ann", "roles": ["responder"]},
            "incident": {"incident_id": "inc-1", "status": "awaiting_approval", "zones": []},
            "step": {
                "id": "fallback:tsc-0001",
                "adapter": "modbus",
                "action": "set",
                "target": {"asset": "tsc-0001"},
                "reversible": True,
                "approval": {"required": 1, "roles": [], "must_include_roles": []},
            },
        }
    )


def test_policy_check_command_passes_on_the_shipped_policies(capsys):
    assert main(["policy", "check", "--policy-dir", str(DEFAULT_POLICY_DIR)]) == 0
    out = capsys.readouterr().out
    stages = ("compile", "data", "data keys", "cases", "inventory", "steps", "rego tests")
    for name in (*stages, "schemas"):
        assert f"ok    {name} " in out
