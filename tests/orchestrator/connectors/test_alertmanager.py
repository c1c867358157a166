"""`alertmanager`: webhook v4 notifications, one finding per alert, resolved closes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from contracts.findings import ActivityId, Finding, SeverityId
from orchestrator.config import REPO_ROOT
from orchestrator.ingest.connectors.alertmanager import AlertmanagerConnector
from orchestrator.ingest.connectors.base import InvalidPayload

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "siem" / "alertmanager"
NOW_MS = 1_800_000_000_000


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def normalize(payload: Any) -> list[Finding]:
    return AlertmanagerConnector().normalize(payload, NOW_MS)


def test_firing_alert_names_rule_severity_asset_and_instance():
    (finding,) = normalize(load("firing.json"))
    assert finding.activity_id is ActivityId.CREATE
    assert finding.finding_info.uid == "alertmanager:5d1c6f3a2b9e8d7c:1796227800000"
    assert finding.finding_info.title == "Unexpected Modbus writes to signal controller tsc-0003"
    assert finding.finding_info.analytic is not None
    assert finding.finding_info.analytic.name == "SignalControllerUnexpectedWrites"
    assert finding.severity_id is SeverityId.CRITICAL
    assert [(r.uid, r.zone) for r in finding.resources] == [("tsc-0003", "traffic")]
    assert finding.evidences[0].dst_endpoint is not None
    assert (finding.evidences[0].dst_endpoint.ip, finding.evidences[0].dst_endpoint.port) == (
        "198.18.10.13",
        502,
    )


def test_resolution_closes_the_same_finding():
    (firing,) = normalize(load("firing.json"))
    (resolved,) = normalize(load("resolved.json"))
    assert resolved.finding_info.uid == firing.finding_info.uid
    assert resolved.activity_id is ActivityId.CLOSE
    assert resolved.time == 1_796_230_500_000  # endsAt


def test_refiring_later_is_a_new_finding():
    later = load("firing.json")
    later["alerts"][0]["startsAt"] = "2026-12-03T08:00:00Z"
    (first,) = normalize(load("firing.json"))
    (again,) = normalize(later)
    assert first.finding_info.uid != again.finding_info.uid


def test_mixed_group_hosts_from_instance_ip_or_hostname_labels():
    hostname, ipv6, by_labels = normalize(load("mixed-group.json"))
    assert hostname.evidences[0].dst_endpoint is not None
    assert hostname.evidences[0].dst_endpoint.hostname == "scada-e01"
    assert hostname.evidences[0].dst_endpoint.port == 9100
    assert hostname.severity_id is SeverityId.MEDIUM
    assert ipv6.activity_id is ActivityId.CLOSE
    assert ipv6.evidences[0].dst_endpoint is not None
    assert ipv6.evidences[0].dst_endpoint.ip == "2001:db8:40::77"
    assert ipv6.evidences[0].user is not None
    assert ipv6.evidences[0].user.name == "svc-permits"
    assert ipv6.severity_id is SeverityId.INFORMATIONAL
    assert by_labels.evidences[0].dst_endpoint is not None
    assert by_labels.evidences[0].dst_endpoint.ip == "198.18.30.10"
    assert by_labels.evidences[0].dst_endpoint.hostname == "tram-ops-01"
    assert by_labels.severity_id is SeverityId.HIGH  # "page"
    assert by_labels.finding_info.title == "Straßenbahn-Leitstelle: Dispositionssystem gestört 🚋"
    # No fingerprint (older Alertmanager): keyed by the label set, stable across posts.
    assert by_labels.finding_info.uid == normalize(load("mixed-group.json"))[2].finding_info.uid


def test_bad_alerts_are_rejected_one_by_one():
    items = AlertmanagerConnector().items(load("partial-bad-alert.json"), NOW_MS)
    assert items[0].finding is not None
    assert [e.pointer for e in items[1].errors] == ["/alerts/1/startsAt"]
    assert sorted(e.pointer for e in items[2].errors) == [
        "/alerts/2/labels",
        "/alerts/2/startsAt",
        "/alerts/2/status",
    ]


def test_other_payload_versions_are_refused():
    with pytest.raises(InvalidPayload) as caught:
        normalize(load("invalid-version.json"))
    assert [e.pointer for e in caught.value.errors] == ["/version"]


def test_a_thousand_alerts_are_a_thousand_findings():
    payload = load("firing.json")
    alert = payload["alerts"][0]
    payload["alerts"] = []
    for index in range(1000):
        copied = copy.deepcopy(alert)
        copied["fingerprint"] = f"{index:016x}"
        payload["alerts"].append(copied)
    findings = normalize(payload)
    assert len({f.finding_info.uid for f in findings}) == 1000


def test_more_alerts_than_allowed_are_refused_whole():
    payload = load("firing.json")
    payload["alerts"] = payload["alerts"] * 1001
    with pytest.raises(InvalidPayload) as caught:
        normalize(payload)
    assert [e.pointer for e in caught.value.errors] == ["/alerts"]
