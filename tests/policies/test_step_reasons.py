"""A reason for every step (#21 item 3): the decision contract requires each step to say
why it is there and why it needs the approval it has, over every case and the sweep; a
step without one fails `policy check` and, at run time, escalates instead of acting."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.decision import DecideRequest, DecisionStep, Verdict
from contracts.findings import Finding
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.policy.base import ENTRYPOINT
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.feasibility import steps_of
from orchestrator.policy.input import containment_input
from orchestrator.policy.models import ContainmentInput, PolicyCase
from orchestrator.policy.results import decision_from
from orchestrator.policy.sweep import sweep_inputs
from orchestrator.wiring.inventory import Inventory

from .test_contract import copy_policies

# What a step does (the candidate's own reason); guardrail codes say why it needs approval.
WHAT = {"step.fallback", "step.quarantine", "step.isolate", "step.revoke", "step.commanded"}
HOW_APPROVED = {
    "guardrail.automatic",
    "guardrail.essential_zone",
    "guardrail.irreversible",
    "guardrail.paused",
    "guardrail.over_budget",
}


def explained(step: DecisionStep) -> None:
    codes = {reason.code for reason in step.because}
    assert codes & WHAT, f"{step.id}: no reason for what it does: {codes}"
    assert codes & HOW_APPROVED, f"{step.id}: no reason for its approval: {codes}"
    assert all(reason.text for reason in step.because)


def test_every_step_of_every_case_and_of_the_sweep_carries_its_reasons():
    engine = EmbeddedEngine(DEFAULT_POLICY_DIR)
    bundle = PolicyBundle.read(DEFAULT_POLICY_DIR)
    seen = 0
    inputs = [PolicyCase.model_validate_json(text).input for text in bundle.cases.values()]
    inputs += [swept.policy_input for swept in sweep_inputs(bundle.data["inventory"])]
    for policy_input in inputs:
        steps = steps_of(engine, policy_input)
        assert not isinstance(steps, str), steps
        for step in steps:
            explained(step)
            seen += 1
    assert seen > 100, "the cases and the sweep produce steps to check"


def test_the_source_ip_that_named_a_workstation_is_the_reason_it_is_quarantined():
    """quarantine:eng-ws-03 came from the finding's source IP; now the decision says so."""
    inventory = Inventory.load(DEFAULT_POLICY_DIR)
    document = json.loads(
        (DEFAULT_POLICY_DIR.parent / "examples/findings/ocsf-crowdstrike.json").read_text()
    )
    finding = Finding.model_validate(
        {
            "finding_info": {"uid": "det-ws", "title": "beacon"},
            "severity_id": 4,
            "confidence_id": 3,
            "time": 0,
            "metadata": {"product": {"name": "EDR"}},
            "evidences": [{"src_endpoint": {"ip": inventory.assets["eng-ws-03"]["ip"]}}],
        }
    )
    del document
    policy_input = containment_input(
        DecideRequest(incident_id="inc-ws", findings=[finding]), inventory
    )
    decision = EmbeddedEngine(DEFAULT_POLICY_DIR).decide(policy_input)
    (step,) = [s for s in decision.steps if s.id == "quarantine:eng-ws-03"]
    named = next(r for r in step.because if r.code == "asset.named")
    assert (
        named.text
        == f"the findings name eng-ws-03 (source IP {inventory.assets['eng-ws-03']['ip']})"
    )
    assert "asset:eng-ws-03" in named.refs


def test_a_policy_whose_step_has_no_reason_fails_check_and_escalates_at_run_time(
    tmp_path: Path,
):
    policies = copy_policies(tmp_path)
    guardrails = policies / "bulkhead/containment/guardrails.rego"
    text = guardrails.read_text()
    silenced = text.replace(
        '"because": array.concat(a.because, guardrail_reasons),', '"because": [],'
    )
    assert silenced != text
    guardrails.write_text(silenced)
    engine = EmbeddedEngine(policies)
    case = json.loads((policies / "cases/traffic-controller-compromise.json").read_text())
    raw = engine.evaluate(ENTRYPOINT, case["input"])
    decision = decision_from(raw, policy_version="v", decision_id="d", digest="x")
    assert decision.verdict is Verdict.ESCALATE
    assert "fallback:tsc-0001" in " ".join(decision.reasons)
    assert "without a reason" in " ".join(decision.reasons)
    problem = steps_of(engine, ContainmentInput.model_validate(case["input"]))
    assert isinstance(problem, str) and "without a reason" in problem
