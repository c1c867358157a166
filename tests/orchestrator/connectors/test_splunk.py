"""`splunk`: the webhook alert action body (sid, search_name, result row) to findings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.findings import ActivityId, Finding, SeverityId
from orchestrator.config import REPO_ROOT
from orchestrator.ingest.connectors.base import InvalidPayload
from orchestrator.ingest.connectors.splunk import SplunkConnector

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "siem" / "splunk"
NOW_MS = 1_800_000_000_000


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def one(payload: Any) -> Finding:
    (finding,) = SplunkConnector().normalize(payload, NOW_MS)
    return finding


def test_sample_names_rule_severity_hosts_and_user():
    finding = one(json.loads((REPO_ROOT / "examples/findings/splunk.json").read_text()))
    assert finding.finding_info.title == (
        "Modbus write to a signal controller from the municipal IT zone"
    )
    assert finding.finding_info.analytic is not None
    assert finding.finding_info.analytic.name == "Threat - Modbus Write From Municipal IT - Rule"
    assert finding.severity_id is SeverityId.HIGH
    (evidence,) = finding.evidences
    assert evidence.src_endpoint is not None
    assert evidence.src_endpoint.ip == "198.18.40.77"
    assert evidence.src_endpoint.port == 51515
    assert evidence.dst_endpoint is not None
    assert evidence.dst_endpoint.ip == "198.18.10.12"
    assert evidence.user is not None
    assert evidence.user.name == "svc-signals"
    assert finding.time == 1_796_227_200_000
    assert finding.metadata.product.name == "Splunk"


def test_es_notable_dedupes_on_event_id_and_urgency_beats_severity():
    finding = one(load("es-notable.json"))
    assert finding.finding_info.uid == (
        "splunk:8C3A2B1D-4E5F-4A6B-9C7D-0E1F2A3B4C5D@@notable@@a1b2c3d4e5f60718293a4b5c6d7e8f90"
    )
    assert finding.severity_id is SeverityId.CRITICAL  # urgency critical, severity medium
    assert finding.finding_info.title == "Excessive failed logins for svc-scada on scada-e01"
    assert finding.finding_info.desc == "More than 20 failed logins within 5 minutes."
    assert finding.evidences[0].dst_endpoint is not None
    assert finding.evidences[0].dst_endpoint.hostname == "scada-e01"
    assert finding.time == 1_796_230_000_512


def test_each_result_row_of_one_search_is_its_own_finding():
    """The "for each result" trigger posts every row under one sid: one finding per row."""
    payload = load("es-notable.json")
    del payload["result"]["event_id"]
    other = json.loads(json.dumps(payload))
    other["result"]["dest_ip"] = "198.18.20.11"
    assert one(payload).finding_info.uid != one(other).finding_info.uid
    assert one(payload).finding_info.uid == one(json.loads(json.dumps(payload))).finding_info.uid
    assert one(payload).finding_info.uid.startswith(f"splunk:{payload['sid']}:")


def test_empty_result_still_makes_a_finding_timed_on_arrival():
    finding = one(load("minimal.json"))
    assert finding.finding_info.title == "Splunk alert rt_md_1796230123.2211"
    assert finding.finding_info.analytic is None
    assert finding.severity_id is SeverityId.UNKNOWN
    assert finding.time == NOW_MS
    assert finding.evidences == []
    assert finding.activity_id is ActivityId.CREATE


def test_multivalue_fields_take_their_first_value_and_unicode_survives():
    finding = one(load("multivalue-unicode.json"))
    assert finding.finding_info.title == "Ampel Hauptstraße \u2013 unerwarteter Schreibzugriff 🚦"
    assert finding.severity_id is SeverityId.CRITICAL  # Splunk's numeric scale: 5 = severe
    (evidence,) = finding.evidences
    assert evidence.src_endpoint is not None
    assert evidence.src_endpoint.hostname == "eng-ws-17"
    assert evidence.dst_endpoint is not None
    assert evidence.dst_endpoint.ip == "198.18.10.11"
    assert evidence.user is not None
    assert evidence.user.name == "Jürgen Müller"
    assert finding.time == 1_796_229_000_000  # ISO _time


def test_raw_data_is_the_whole_body():
    payload = load("es-notable.json")
    assert json.loads(one(payload).raw_data or "") == payload


def test_missing_sid_is_rejected_by_pointer():
    with pytest.raises(InvalidPayload) as caught:
        SplunkConnector().normalize(load("invalid-missing-sid.json"))
    assert [e.pointer for e in caught.value.errors] == ["/sid"]


@pytest.mark.parametrize("result", [None, {"_time": "not a time"}, {"src_port": "99999"}])
def test_odd_but_harmless_rows_still_normalize(result):
    finding = one({"sid": "s1", "search_name": "x", "result": result})
    assert finding.time == NOW_MS
    assert finding.evidences == []
