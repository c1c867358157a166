"""`falco`: Falcosidekick webhook events to findings about the node Falco watches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.findings import Finding, SeverityId
from orchestrator.config import REPO_ROOT
from orchestrator.ingest.connectors.base import InvalidPayload
from orchestrator.ingest.connectors.falco import FalcoConnector
from orchestrator.ingest.connectors.severity import FALCO

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "siem" / "falco"
NOW_MS = 1_800_000_000_000


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def one(payload: Any) -> Finding:
    (finding,) = FalcoConnector().normalize(payload, NOW_MS)
    return finding


def test_outbound_connection_names_rule_priority_node_peers_and_user():
    finding = one(load("outbound-connection.json"))
    assert finding.finding_info.uid == "falco:0f3e2b4a-9c1d-4e8f-a7b6-5d4c3b2a1f0e"
    assert finding.finding_info.title == "Unexpected outbound connection destination"
    assert finding.severity_id is SeverityId.CRITICAL
    assert [r.uid for r in finding.resources] == ["permits-web-01"]
    network, node = finding.evidences
    assert network.src_endpoint is not None
    assert (network.src_endpoint.ip, network.src_endpoint.port) == ("198.18.40.20", 40122)
    assert network.dst_endpoint is not None
    assert (network.dst_endpoint.ip, network.dst_endpoint.port) == ("203.0.113.50", 4444)
    assert network.user is not None
    assert (network.user.name, network.user.uid) == ("svc-permits", "1017")
    assert node.dst_endpoint is not None
    assert node.dst_endpoint.hostname == "permits-web-01"
    assert finding.time == 1_796_227_887_482  # nanoseconds in `time` are cut to ms


def test_k8s_shell_event_with_root_uid_zero():
    finding = one(load("shell-in-container-k8s.json"))
    assert finding.severity_id is SeverityId.LOW  # Notice
    (user_evidence, _node) = finding.evidences
    assert user_evidence.user is not None
    assert (user_evidence.user.name, user_evidence.user.uid) == ("root", "0")


def test_event_without_uuid_keys_on_content_and_takes_evt_time():
    finding = one(load("no-uuid-no-time.json"))
    assert finding.finding_info.uid.startswith("falco:")
    assert finding.finding_info.uid == one(load("no-uuid-no-time.json")).finding_info.uid
    assert finding.time == 1_796_233_500_000
    assert finding.severity_id is SeverityId.MEDIUM


def test_emergency_is_fatal_and_unicode_survives():
    finding = one(load("emergency-unicode.json"))
    assert finding.severity_id is SeverityId.FATAL
    assert finding.finding_info.title == "Linux Kernel Module Injection — 内核模块"


def test_unknown_priority_is_rejected_by_pointer():
    with pytest.raises(InvalidPayload) as caught:
        one(load("invalid-unknown-priority.json"))
    assert [e.pointer for e in caught.value.errors] == ["/priority"]


@pytest.mark.parametrize(
    ("priority", "severity"),
    [
        ("Emergency", 6),
        ("Alert", 5),
        ("Critical", 5),
        ("Error", 4),
        ("Warning", 3),
        ("Notice", 2),
        ("Informational", 1),
        ("Info", 1),
        ("debug", 1),
    ],
)
def test_priority_table_is_case_insensitive(priority, severity):
    assert FALCO(priority) == severity
