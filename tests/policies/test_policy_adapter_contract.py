"""What the policy emits, the adapters accept: every step in the shipped cases resolves in
its adapter's own validation (no root or target needed: resolution touches nothing)."""

from __future__ import annotations

import pytest

from adapters.network.topology import resolve
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.models import PolicyCase
from orchestrator.wiring.inventory import Inventory

CASES = sorted((DEFAULT_POLICY_DIR / "cases").glob("*.json"))


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine(DEFAULT_POLICY_DIR)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_network_steps_of_every_case_resolve_in_the_nftables_adapter(engine, path):
    decision = engine.decide(PolicyCase.model_validate_json(path.read_text()).input)
    topology = Inventory.load(DEFAULT_POLICY_DIR).network_topology(lab_gateway_netns="bh-gw")
    for step in decision.steps:
        if step.adapter == "nftables":
            selection = resolve(topology, step.action, step.target, step.args)
            assert selection is not None


def test_the_cases_exercise_network_steps(engine):
    adapters = {
        step.adapter
        for path in CASES
        for step in engine.decide(PolicyCase.model_validate_json(path.read_text()).input).steps
    }
    assert "nftables" in adapters
