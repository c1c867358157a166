"""`suricata`: EVE alert records, alone, in a JSON array or in an NDJSON batch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.findings import ConfidenceId, Finding, SeverityId
from orchestrator.config import REPO_ROOT
from orchestrator.ingest.connectors.base import InvalidPayload
from orchestrator.ingest.connectors.suricata import SuricataConnector

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "siem" / "suricata"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def one(payload: Any) -> Finding:
    (finding,) = SuricataConnector().normalize(payload)
    return finding


def test_alert_names_signature_severity_and_both_ends():
    finding = one(load("alert.json"))
    assert finding.finding_info.uid == "suricata:ids-traffic-01:1429571184303958:1:2026001"
    assert finding.finding_info.analytic is not None
    assert finding.finding_info.analytic.uid == "1:2026001:3"
    assert finding.severity_id is SeverityId.HIGH  # signature_severity Major beats priority 2
    assert finding.confidence_id is ConfidenceId.HIGH
    (evidence,) = finding.evidences
    assert evidence.src_endpoint is not None
    assert (evidence.src_endpoint.ip, evidence.src_endpoint.port) == ("198.18.40.77", 51515)
    assert evidence.dst_endpoint is not None
    assert (evidence.dst_endpoint.ip, evidence.dst_endpoint.port) == ("198.18.10.11", 502)
    assert finding.time == 1_796_227_743_254


def test_repeated_alerts_on_one_flow_are_one_finding():
    first = load("alert.json")
    later = dict(first, timestamp="2026-12-02T16:09:09.000000+0000")
    assert one(first).finding_info.uid == one(later).finding_info.uid


def test_critical_et_metadata_and_ipv6():
    finding = one(load("et-critical-ipv6.json"))
    assert finding.severity_id is SeverityId.CRITICAL
    assert finding.confidence_id is ConfidenceId.MEDIUM
    assert finding.evidences[0].src_endpoint is not None
    assert finding.evidences[0].src_endpoint.ip == "2001:db8:40::77"


def test_priority_is_the_fallback_severity_and_a_flowless_alert_keys_on_itself():
    finding = one(load("decoder-event-no-flow.json"))
    assert finding.severity_id is SeverityId.LOW  # priority 3
    assert finding.finding_info.uid.startswith("suricata:sensor:")
    assert finding.evidences[0].src_endpoint is not None
    assert finding.evidences[0].src_endpoint.port is None


def test_json_array_is_a_batch():
    findings = SuricataConnector().normalize(load("array.json"))
    assert len(findings) == 2
    assert findings[1].evidences[0].dst_endpoint is not None
    assert findings[1].evidences[0].dst_endpoint.ip == "198.18.10.14"


def test_non_alert_records_are_skipped_with_a_reason():
    items = SuricataConnector().items({"event_type": "flow", "timestamp": "x"}, 0)
    assert [(i.ignored, i.errors) for i in items] == [("event_type 'flow' is not an alert", ())]


def test_alert_without_signature_id_is_rejected_by_pointer():
    record = load("alert.json")
    del record["alert"]["signature_id"]
    with pytest.raises(InvalidPayload) as caught:
        one(record)
    assert [e.pointer for e in caught.value.errors] == ["/alert/signature_id"]


def test_empty_batch_is_rejected():
    with pytest.raises(InvalidPayload, match="at least one EVE record"):
        SuricataConnector().normalize([])


@pytest.mark.parametrize(("priority", "severity"), [(1, 4), (2, 3), (3, 2), (4, 1), (255, 1)])
def test_priority_table(priority, severity):
    record = load("decoder-event-no-flow.json")
    record["alert"]["severity"] = priority
    assert one(record).severity_id == severity
