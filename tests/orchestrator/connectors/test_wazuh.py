"""`wazuh`: manager alerts (alerts.json format) to findings about the agent's host."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.findings import Finding, SeverityId
from orchestrator.config import REPO_ROOT
from orchestrator.ingest.connectors.base import InvalidPayload
from orchestrator.ingest.connectors.severity import WAZUH
from orchestrator.ingest.connectors.wazuh import WazuhConnector

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "siem" / "wazuh"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def one(payload: Any) -> Finding:
    (finding,) = WazuhConnector().normalize(payload)
    return finding


def test_sample_names_rule_level_agent_source_and_user():
    finding = one(json.loads((REPO_ROOT / "examples/findings/wazuh.json").read_text()))
    assert finding.finding_info.uid == "wazuh:wazuh-manager-01:1796227665.4821377"
    assert finding.finding_info.analytic is not None
    assert finding.finding_info.analytic.uid == "40112"
    assert finding.severity_id is SeverityId.HIGH  # level 12
    assert [r.uid for r in finding.resources] == ["tram-ops-01"]
    network, agent = finding.evidences
    assert network.src_endpoint is not None
    assert network.src_endpoint.ip == "198.18.40.77"
    assert network.user is not None
    assert network.user.name == "svc-signals"
    assert agent.dst_endpoint is not None
    assert agent.dst_endpoint.ip == "198.18.30.10"
    assert finding.time == 1_796_227_665_112


def test_brute_force_from_outside():
    finding = one(load("sshd-brute-force.json"))
    assert finding.severity_id is SeverityId.MEDIUM  # level 10
    assert finding.evidences[0].src_endpoint is not None
    assert finding.evidences[0].src_endpoint.ip == "203.0.113.77"
    assert finding.evidences[0].user is not None
    assert finding.evidences[0].user.name == "admin"
    assert finding.finding_info.desc is not None
    assert "Invalid user admin" in finding.finding_info.desc


def test_windows_event_fields_give_the_peer_and_the_account():
    finding = one(load("windows-logon.json"))
    assert finding.severity_id is SeverityId.LOW  # level 3
    network = finding.evidences[0]
    assert network.src_endpoint is not None
    assert network.src_endpoint.ip == "198.18.40.77"
    assert network.user is not None
    assert network.user.name == "svc-scada"
    assert network.user.uid == "S-1-5-21-1004336348-1177238915-682003330-4120"


def test_manager_alert_without_data_or_agent_ip():
    finding = one(load("manager-no-data.json"))
    assert finding.severity_id is SeverityId.MEDIUM
    assert [r.uid for r in finding.resources] == ["wazuh-manager-01"]
    (agent,) = finding.evidences
    assert agent.dst_endpoint is not None
    assert agent.dst_endpoint.hostname == "wazuh-manager-01"


def test_level_15_is_critical_and_unicode_survives():
    finding = one(load("level-15-unicode.json"))
    assert finding.severity_id is SeverityId.CRITICAL
    assert finding.finding_info.title == "Ransomware: Massenverschlüsselung erkannt \u2013 勒索软件"
    assert finding.evidences[0].user is not None
    assert finding.evidences[0].user.name == "Zoë Ångström"


def test_missing_rule_level_is_named():
    with pytest.raises(InvalidPayload) as caught:
        one(load("invalid-missing-level.json"))
    assert sorted(e.pointer for e in caught.value.errors) == ["/rule/level"]


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (0, SeverityId.INFORMATIONAL),
        (2, SeverityId.INFORMATIONAL),
        (3, SeverityId.LOW),
        (6, SeverityId.LOW),
        (7, SeverityId.MEDIUM),
        (11, SeverityId.MEDIUM),
        (12, SeverityId.HIGH),
        (14, SeverityId.HIGH),
        (15, SeverityId.CRITICAL),
        (16, SeverityId.CRITICAL),
        (17, SeverityId.UNKNOWN),
        ("12", SeverityId.HIGH),
        (None, SeverityId.UNKNOWN),
    ],
)
def test_level_table(level, severity):
    assert WAZUH(level) is severity


def test_level_above_16_is_rejected():
    payload = load("sshd-brute-force.json")
    payload["rule"]["level"] = 17
    with pytest.raises(InvalidPayload) as caught:
        one(payload)
    assert [e.pointer for e in caught.value.errors] == ["/rule/level"]
