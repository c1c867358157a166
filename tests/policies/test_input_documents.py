"""What the policy sees of a typed input: its document, the JSON the engines evaluate
and digest. It must be the input as it was written or built, key for key: absent and
null differ in Rego, and a decision's `input_digest` is compared across versions."""

from __future__ import annotations

import json

import pytest

from contracts.decision import DecideRequest
from contracts.findings import Finding
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.input import containment_input
from orchestrator.policy.models import AuthorizationInput, ContainmentInput
from orchestrator.policy.results import canonical_json, digest_of
from orchestrator.wiring.inventory import Inventory

CASES = sorted((DEFAULT_POLICY_DIR / "cases").glob("*.json"))

# A small city of its own (not policies/data, which changes with the policies): an asset
# without an ip, one with a field the model does not name, a shared identity.
CITY = {
    "zones": {"traffic": {"cidrs": ["198.18.10.0/24"], "criticality": "high", "essential": False}},
    "device_types": {"traffic_controller": {}},
    "assets": {
        "tsc-1": {
            "zone": "traffic",
            "type": "traffic_controller",
            "ip": "198.18.10.5",
            "modbus": {"unit": 1},
        },
        "tsc-2": {"zone": "traffic", "type": "traffic_controller"},
    },
    "identities": {"svc-x": {"holders": ["ldap"], "used_in_zones": ["traffic"]}},
}
FINDING = {
    "finding_info": {"uid": "f-1", "title": "t"},
    "severity_id": 4,
    "time": 1,
    "resources": [{"uid": "tsc-2"}],
    "evidences": [{"src_endpoint": {"ip": "198.18.10.5"}, "user": {"name": "svc-x"}}],
    "metadata": {"product": {"name": "p"}},
    "raw_data": "{}",
}
# The digest this input had when the enrichment still built a dict (before the typed
# boundary): the same findings must keep giving the same digest.
DIGEST_BEFORE_TYPES = "sha256:e39572045e9d66cec4f3b757a16d334ab465b65c991c017e5ba2ef8c1cfb8f89"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_a_case_inputs_document_is_the_input_as_written(path):
    written = json.loads(path.read_text())["input"]
    document = ContainmentInput.model_validate(written).document()
    assert canonical_json(document) == canonical_json(written)


def test_the_enriched_inputs_digest_is_the_one_it_had_as_a_dict():
    request = DecideRequest(incident_id="inc-1", findings=[Finding.model_validate(FINDING)])
    policy_input = containment_input(
        request, Inventory(CITY), automation_paused=True, active_containments=2
    )
    document = policy_input.document()
    assert digest_of(canonical_json(document)) == DIGEST_BEFORE_TYPES
    first, second = document["assets"]
    assert "ip" not in first and second["modbus"] == {"unit": 1}
    assert document["findings"][0]["finding_info"]["desc"] is None
    assert "raw_data" not in document["findings"][0]


def test_the_embedded_engine_digests_the_document():
    request = DecideRequest(incident_id="inc-1", findings=[Finding.model_validate(FINDING)])
    policy_input = containment_input(
        request, Inventory(CITY), automation_paused=True, active_containments=2
    )
    decision = EmbeddedEngine(DEFAULT_POLICY_DIR).decide(policy_input)
    assert decision.input_digest == DIGEST_BEFORE_TYPES


def test_an_authorization_inputs_document_leaves_out_what_was_not_given():
    """A principal without an id (an input from before ids) stays without one, so the
    policy derives `local:<name>` (`object.get` with a default); a null would be taken
    as the id itself, and four-eyes would compare nulls."""
    written = {"action": "pause", "principal": {"name": "ann", "roles": ["admin"]}}
    assert AuthorizationInput.model_validate(written).document() == written
    with_nulls = {**written, "incident": None, "step": None}
    assert AuthorizationInput.model_validate(with_nulls).document() == with_nulls
