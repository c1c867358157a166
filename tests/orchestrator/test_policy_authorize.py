"""`engine.authorize(...)`: the approval policy behind every approve/deny/extend/release/pause."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.policy.base import Authorization
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.models import AuthorizationInput

ESSENTIAL_STEP = {
    "id": "isolate:energy",
    "adapter": "nftables",
    "action": "contain",
    "target": {"zone": "energy"},
    "reversible": True,
    "approval": {
        "required": 2,
        "roles": ["duty-officer", "responder"],
        "must_include_roles": ["duty-officer"],
    },
}


def request(
    action: str, name: str, roles: list[str], step: dict[str, Any] | None = None
) -> AuthorizationInput:
    return AuthorizationInput.model_validate(
        {
            "action": action,
            "principal": {"name": name, "roles": roles},
            "incident": {
                "incident_id": "inc-1",
                "status": "awaiting_approval",
                "zones": ["energy"],
            },
            "step": step,
        }
    )


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine(DEFAULT_POLICY_DIR)


def approval_only(tmp_path: Path, rego: str) -> EmbeddedEngine:
    """A policy directory whose approval package is `rego` (a containment stub beside it)."""
    root = tmp_path / "policies"
    (root / "bulkhead" / "approval").mkdir(parents=True)
    (root / "bulkhead" / "approval" / "approval.rego").write_text(
        "package bulkhead.approval\n\n" + rego
    )
    return EmbeddedEngine(root)


def test_allowed_request_is_an_authorization_with_a_decision_id_and_version(engine):
    verdict = engine.authorize(request("approve", "ann", ["responder"], ESSENTIAL_STEP))
    assert verdict == Authorization(
        allow=True,
        decision_id=verdict.decision_id,
        policy_version=engine.version,
        reasons=[],
    )
    assert uuid.UUID(verdict.decision_id).version == 4


def test_refusal_carries_the_policys_reasons(engine):
    prior = {**ESSENTIAL_STEP, "approvals": [{"principal": "ann", "roles": ["responder"]}]}
    verdict = engine.authorize(request("approve", "bob", ["responder"], prior))
    assert not verdict.allow
    assert verdict.reasons == [
        "step isolate:energy still needs an approver with the role duty-officer"
    ]


def test_the_api_request_shape_without_prior_approvals_is_understood(engine):
    """What orchestrator/responders/authorization.py sends: no `approvals` on the step."""
    assert engine.authorize(request("approve", "dan", ["duty-officer"], ESSENTIAL_STEP)).allow
    assert engine.authorize(request("pause", "dan", ["duty-officer"])).allow
    assert not engine.authorize(request("pause", "ann", ["responder"])).allow


@pytest.mark.parametrize("action", ["approve", "deny", "extend", "release", "pause", "resume"])
def test_viewer_is_refused_every_action(engine, action):
    verdict = engine.authorize(request(action, "vic", ["viewer"], ESSENTIAL_STEP))
    assert not verdict.allow
    assert "viewer is read-only" in verdict.reasons


def test_a_request_that_is_not_json_is_refused_not_raised(engine):
    """A step's target takes any value; one that JSON cannot hold is a refusal."""
    step = {**ESSENTIAL_STEP, "target": {"zone": object()}}
    verdict = engine.authorize(request("approve", "ann", ["responder"], step))
    assert not verdict.allow
    assert verdict.reasons[0].startswith("request is not JSON")


def test_a_dict_request_is_checked_as_the_model_is(engine):
    """Transitional: callers that still build a dict get the same answers as the model's,
    and a dict the model refuses is a refusal saying where, not an exception."""
    as_dict = request("approve", "dan", ["duty-officer"], ESSENTIAL_STEP).document()
    assert engine.authorize(as_dict).allow
    verdict = engine.authorize({"action": "approve", "principal": object()})
    assert not verdict.allow
    assert verdict.reasons[0].startswith("request is not a valid authorization input: principal")
    assert not engine.authorize({**as_dict, "action": "delete"}).allow


def test_approval_policy_that_errors_refuses(tmp_path):
    engine = approval_only(tmp_path, "allow := 1 / count(input.principal.roles) > 0\n")
    verdict = engine.authorize(request("approve", "ann", [], ESSENTIAL_STEP))
    assert not verdict.allow
    assert verdict.reasons[0].startswith("approval policy error")
    assert "divide by zero" in verdict.reasons[0]


def test_allow_that_is_truthy_but_not_true_refuses(tmp_path):
    engine = approval_only(tmp_path, 'allow := "yes"\n')
    verdict = engine.authorize(request("approve", "ann", ["responder"], ESSENTIAL_STEP))
    assert not verdict.allow
    assert verdict.reasons == ["the approval policy does not allow it"]


def test_undefined_allow_refuses_saying_so(tmp_path):
    engine = approval_only(tmp_path, 'allow if input.action == "never"\n')
    verdict = engine.authorize(request("approve", "ann", ["responder"], ESSENTIAL_STEP))
    assert not verdict.allow
    assert verdict.reasons == ["the approval policy is undefined for this request"]
