"""Property tests of OpenC2 commands against the shipped policy: for any city, any mix of
findings and a command of any supported kind, an essential zone is never isolated on a
command's say-so, and a commanded step touching one is never automatic.

Commands go the whole way a real one goes: checked (openc2_command), translated against
the drawn city (openc2_consumer), carried as a finding (openc2_carry) and turned into
`input.command` by the policy input builder."""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contracts.findings import Finding
from contracts.incident import Principal
from orchestrator.standards.openc2_carry import finding_of
from orchestrator.standards.openc2_command import parse_command
from orchestrator.standards.openc2_consumer import Proposal, Translator

# The drawn cities and the decide helper of the guardrail properties (tests/policies is no
# package on the path, so the module is loaded from its file).
_SPEC = importlib.util.spec_from_file_location(
    "guardrail_properties", Path(__file__).with_name("test_guardrail_properties.py")
)
assert _SPEC is not None and _SPEC.loader is not None
_GUARDRAILS = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_GUARDRAILS)
PROPERTY_SETTINGS, cities, decide = (
    _GUARDRAILS.PROPERTY_SETTINGS,
    _GUARDRAILS.cities,
    _GUARDRAILS.decide,
)

PRODUCER = Principal(id="local:soar", name="soar", roles=["openc2-producer"])


@st.composite
def commands(draw: st.DrawFn, city: dict[str, Any]) -> dict[str, Any]:
    zone = draw(st.sampled_from(sorted(city["zones"])))
    cidr = ipaddress.ip_network(city["zones"][zone]["cidrs"][0])
    kinds = ["zone", "host", "flow"]
    kinds += ["device"] if city["assets"] else []
    kinds += ["account"] if city["identities"] else []
    kind = draw(st.sampled_from(kinds))
    if kind == "zone":
        return {"action": "deny", "target": {"ipv4_net": str(cidr)}}
    host = str(cidr.network_address + draw(st.integers(1, 254)))
    if kind == "host":
        return {"action": "deny", "target": {"ipv4_net": host}}
    if kind == "flow":
        return {
            "action": "deny",
            "target": {
                "ipv4_connection": {"src_addr": "203.0.113.9", "dst_addr": host, "protocol": "tcp"}
            },
        }
    if kind == "device":
        asset = draw(st.sampled_from(sorted(city["assets"])))
        return {
            "action": "contain",
            "target": {"device": {"device_id": asset}},
            "args": {"er": {"device_containment": "network_isolation"}},
        }
    identity = draw(st.sampled_from(sorted(city["identities"])))
    return {
        "action": "set",
        "target": {"er": {"account": {"account_name": identity}}},
        "args": {"er": {"account_status": "disabled"}},
    }


@st.composite
def commanded(draw: st.DrawFn) -> tuple[dict[str, Any], Proposal, bool, int]:
    city = draw(cities())
    command = draw(commands(city))
    proposal = Translator(city).translate(parse_command(command), PRODUCER, now_ms=0)
    assert isinstance(proposal, Proposal)
    return city, proposal, draw(st.booleans()), draw(st.integers(0, 12))


def essential(city: dict[str, Any], zones: list[str]) -> bool:
    return any(city["zones"].get(z, {}).get("essential", True) for z in zones)


def run(scenario: tuple[dict[str, Any], Proposal, bool, int]) -> Any:
    city, proposal, paused, active = scenario
    finding: Finding = finding_of(
        proposal.command.model_copy(update={"command_id": "c-1"}),
        entity=proposal.entity,
        kind=proposal.kind,
        zone=proposal.zone,
        title="property",
        now_ms=0,
    )
    guardrails = {
        "severity": {"act_at": 4, "isolate_zone_at": 5, "informational": 1},
        "confidence": {"low": 1},
        "blast_radius": {"max_automatic_containments": 6},
        "approval": {"timeout_s": 900},
        "lease_s": {"fallback": 3600, "quarantine": 3600, "isolate": 1800, "revoke": 3600},
    }
    decision, _, _ = decide(city, guardrails, [finding], paused, active)
    return decision


@PROPERTY_SETTINGS
@given(commanded())
def test_a_command_never_isolates_a_whole_essential_zone(scenario):
    city, proposal, _, _ = scenario
    decision = run(scenario)
    wanted = {s.id: s for s in proposal.command.steps}
    for step in decision.steps:
        if step.id in wanted and wanted[step.id].whole_zones:
            assert not essential(city, wanted[step.id].whole_zones), step


@PROPERTY_SETTINGS
@given(commanded())
def test_a_commanded_step_touching_an_essential_zone_is_never_automatic(scenario):
    city, proposal, _, _ = scenario
    decision = run(scenario)
    assert not any(r.startswith(("policy error", "policy returned")) for r in decision.reasons)
    wanted = {s.id: s for s in proposal.command.steps}
    for step in decision.steps:
        if step.id in wanted and essential(city, wanted[step.id].zones):
            assert step.approval.required >= 2, step
            assert "duty-officer" in step.approval.must_include_roles, step
        if not step.reversible:
            assert step.approval.required >= 1, step
