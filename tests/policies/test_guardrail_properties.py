"""Property tests: the guardrails hold for any city and any findings, not only the examples.

Each example builds a random (valid) inventory and budget, random findings naming its
assets and identities, and asks the real shipped policy. What a step touches is worked
out here, independently of the policy, from the step's target and the inventory.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.decision import DecideRequest, Decision, DecisionStep
from contracts.findings import Finding
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.input import containment_input
from orchestrator.policy.models import ContainmentInput
from orchestrator.wiring.inventory import Inventory

BASE = PolicyBundle.read(DEFAULT_POLICY_DIR)
ZONES = ["z0", "z1", "z2", "z3"]
SYSTEMS = ["ldap", "scim", "vault"]
PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,  # each example compiles a policy for its own city
    database=None,  # no example database written into the work tree
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def cities(draw: st.DrawFn) -> dict[str, Any]:
    zone_names = draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=4, unique=True))
    zones = {
        name: {
            "cidrs": [f"198.18.{index}.0/24"],
            "criticality": "high",
            "essential": draw(st.booleans()),
        }
        for index, name in enumerate(zone_names)
    }
    assets = {
        f"a{index}": {
            "zone": draw(st.sampled_from(zone_names)),
            "type": draw(st.sampled_from(["controller", "server"])),
            "ip": f"198.18.9.{index + 10}",
        }
        for index in range(draw(st.integers(0, 6)))
    }
    systems = {
        name: {"adapter": name, "revocation": {"action": "deny", "reversible": draw(st.booleans())}}
        for name in SYSTEMS
    }
    identities = {
        f"svc-{index}": {
            "holders": draw(st.lists(st.sampled_from(SYSTEMS), min_size=1, unique=True)),
            "used_in_zones": draw(st.lists(st.sampled_from(zone_names), min_size=1, unique=True)),
        }
        for index in range(draw(st.integers(0, 3)))
    }
    services = {
        f"svc{index}": {"zone": draw(st.sampled_from(zone_names)), "essential": draw(st.booleans())}
        for index in range(draw(st.integers(0, 3)))
    }
    for name, zone in zones.items():
        # An essential service is listed where it runs, and wherever it depends on.
        zone["essential_services"] = sorted(
            sid
            for sid, service in services.items()
            if service["essential"] and (service["zone"] == name or draw(st.booleans()))
        )
    return {
        "zones": zones,
        "device_types": {
            "controller": {
                "protocol": "modbus",
                "modes": {"normal": 0, "safe": 1},
                "safe_mode": "safe",
            },
            "server": {},
        },
        "assets": assets,
        "systems": systems,
        "identities": identities,
        "services": services,
    }


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], list[Finding], bool, int]:
    city = draw(cities())
    guardrails = {
        **BASE.data["guardrails"],
        "blast_radius": {"max_automatic_containments": draw(st.integers(0, 6))},
    }
    names = [*city["assets"], *city["identities"], "nowhere-1"]
    findings = [
        Finding.model_validate(
            {
                "finding_info": {"uid": f"f{index}", "title": "random"},
                "severity_id": draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 99])),
                "confidence_id": draw(st.sampled_from([0, 1, 2, 3, 99])),
                "time": 0,
                "resources": [{"uid": u} for u in draw(st.lists(st.sampled_from(names)))],
                "evidences": [
                    {"user": {"name": u}}
                    for u in draw(st.lists(st.sampled_from(names), max_size=2))
                ],
                "metadata": {"product": {"name": "hypothesis"}},
            }
        )
        for index in range(draw(st.integers(1, 4)))
    ]
    return city, guardrails, findings, draw(st.booleans()), draw(st.integers(0, 12))


def touched_zones(step: DecisionStep, city: dict[str, Any]) -> set[str]:
    """The zones a step acts on, from its target alone."""
    target = step.target
    if "asset" in target:
        return {city["assets"][target["asset"]]["zone"]}
    if "device" in target:
        return {city["assets"][target["device"]]["zone"]}
    if "zone" in target:
        return {target["zone"]}
    if "identity" in target:
        return set(city["identities"][target["identity"]]["used_in_zones"])
    raise AssertionError(f"step {step.id} has a target no guardrail test knows: {target}")


def decide(
    city: dict[str, Any],
    guardrails: dict[str, Any],
    findings: list[Finding],
    paused: bool,  # noqa: FBT001 - unpacked straight from the drawn scenario tuple
    active: int,
) -> tuple[Decision, EmbeddedEngine, ContainmentInput]:
    engine = EmbeddedEngine.from_bundle(
        BASE.with_data({"inventory": city, "guardrails": guardrails})
    )
    request = DecideRequest(incident_id="inc-prop", findings=findings)
    policy_input = containment_input(
        request, Inventory(city), automation_paused=paused, active_containments=active
    )
    return engine.decide(policy_input), engine, policy_input


@PROPERTY_SETTINGS
@given(scenarios())
def test_no_step_touching_an_essential_zone_is_ever_automatic(scenario):
    city, guardrails, findings, paused, active = scenario
    decision, _, _ = decide(city, guardrails, findings, paused, active)
    for step in decision.steps:
        if any(city["zones"][z]["essential"] for z in touched_zones(step, city)):
            assert step.approval.required >= 2, step
            assert "duty-officer" in step.approval.must_include_roles, step


@PROPERTY_SETTINGS
@given(scenarios())
def test_no_irreversible_step_runs_without_approval(scenario):
    city, guardrails, findings, paused, active = scenario
    decision, _, _ = decide(city, guardrails, findings, paused, active)
    for step in decision.steps:
        if not step.reversible:
            assert step.approval.required >= 1, step


@PROPERTY_SETTINGS
@given(scenarios())
def test_paused_automation_or_a_spent_budget_leaves_no_automatic_step(scenario):
    city, guardrails, findings, paused, active = scenario
    decision, _, _ = decide(city, guardrails, findings, paused, active)
    automatic = [s for s in decision.steps if s.approval.required == 0]
    if paused:
        assert automatic == []
    budget = guardrails["blast_radius"]["max_automatic_containments"]
    assert active + len(automatic) <= budget or automatic == []


@PROPERTY_SETTINGS
@given(scenarios())
def test_every_decision_is_valid_deterministic_and_never_self_approving(scenario):
    city, guardrails, findings, paused, active = scenario
    decision, engine, policy_input = decide(city, guardrails, findings, paused, active)
    # A policy error or an invalid decision would be an escalation saying so.
    assert not any(r.startswith(("policy error", "policy returned")) for r in decision.reasons)
    assert len({s.id for s in decision.steps}) == len(decision.steps)
    assert all(s.approval.on_timeout.value == "escalate" for s in decision.steps)
    again = engine.decide(policy_input)
    assert (again.verdict, again.steps, again.reasons) == (
        decision.verdict,
        decision.steps,
        decision.reasons,
    )
    if decision.steps:
        assert decision.verdict.value == "contain"


@PROPERTY_SETTINGS
@given(
    zone=st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
    severity=st.integers(4, 6),
)
def test_asset_in_a_zone_the_inventory_does_not_know_is_never_automatic(zone, severity):
    """Input built by hand (not by Bulkhead's enrichment) naming any zone at all."""
    engine = _lab_engine()
    known = BASE.data["inventory"]["zones"]
    finding = {
        "finding_info": {"uid": "f-hand", "title": "by hand"},
        "severity_id": severity,
        "confidence_id": 3,
        "time": 0,
        "metadata": {"product": {"name": "hand"}},
    }
    policy_input = ContainmentInput.model_validate(
        {
            "incident_id": "inc-hand",
            "findings": [finding],
            "assets": [
                {"id": "x1", "zone": zone, "type": "traffic_controller", "ip": "198.18.99.1"}
            ],
            "identities": [],
            "automation": {"paused": False},
            "active_containments": 0,
        }
    )
    decision = engine.decide(policy_input)
    essential = zone not in known or known[zone]["essential"]
    for step in decision.steps:
        assert (step.approval.required >= 2) == essential, step


_ENGINES: dict[str, EmbeddedEngine] = {}


def _lab_engine() -> EmbeddedEngine:
    if "lab" not in _ENGINES:
        _ENGINES["lab"] = EmbeddedEngine.from_bundle(BASE)
    return _ENGINES["lab"]
