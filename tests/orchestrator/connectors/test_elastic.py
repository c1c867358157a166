"""`elastic`: a Kibana Webhook connector body carrying context.rule and context.alerts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.findings import ActivityId, Finding, SeverityId
from orchestrator.config import REPO_ROOT
from orchestrator.ingest.connectors.base import InvalidPayload
from orchestrator.ingest.connectors.elastic import ElasticConnector, dig

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "siem" / "elastic"
NOW_MS = 1_800_000_000_000


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def normalize(payload: Any) -> list[Finding]:
    return ElasticConnector().normalize(payload, NOW_MS)


def test_sample_names_rule_severity_host_peer_and_user():
    (finding,) = normalize(json.loads((REPO_ROOT / "examples/findings/elastic.json").read_text()))
    assert finding.finding_info.uid.startswith("elastic:5f0d6c8e")
    assert finding.finding_info.title.startswith("OPC UA write to a substation RTU")
    assert finding.finding_info.analytic is not None
    assert finding.finding_info.analytic.uid == "bulkhead-opcua-write-rtu"
    assert finding.severity_id is SeverityId.CRITICAL
    assert [r.uid for r in finding.resources] == ["rtu-e01"]
    network, host = finding.evidences
    assert network.src_endpoint is not None
    assert network.src_endpoint.ip == "198.18.40.33"
    assert network.dst_endpoint is not None
    assert network.dst_endpoint.port == 4840
    assert network.user is not None
    assert network.user.name == "svc-scada"
    assert host.dst_endpoint is not None
    assert host.dst_endpoint.ip == "198.18.20.11"
    assert host.dst_endpoint.hostname == "rtu-e01"


def test_nested_kibana_fields_read_like_dotted_ones():
    (finding,) = normalize(load("nested-fields.json"))
    assert finding.finding_info.uid.startswith("elastic:b1d0f3e2")
    assert finding.severity_id is SeverityId.HIGH
    assert finding.finding_info.desc is not None
    assert finding.finding_info.desc.startswith("process event with process bash")
    host = finding.evidences[-1].dst_endpoint
    assert host is not None
    assert host.ip == "198.18.20.10"  # the first of host.ip


def test_each_alert_is_a_finding_and_workflow_status_sets_the_activity():
    findings = normalize(load("many-alerts.json"))
    assert [f.activity_id for f in findings] == [
        ActivityId.CREATE,
        ActivityId.UPDATE,
        ActivityId.CLOSE,
    ]
    assert len({f.finding_info.uid for f in findings}) == 3
    assert {f.severity_id for f in findings} == {SeverityId.MEDIUM}


def test_recovered_alert_closes_its_finding():
    payload = load("many-alerts.json")
    payload["context"]["alerts"] = payload["context"]["alerts"][:1]
    payload["context"]["alerts"][0]["kibana.alert.status"] = "recovered"
    (finding,) = normalize(payload)
    assert finding.activity_id is ActivityId.CLOSE


def test_risk_score_is_the_fallback_severity():
    (finding,) = normalize(load("risk-score-only.json"))
    assert finding.severity_id is SeverityId.HIGH  # riskScore 50 (camelCase, as Kibana 8 names it)
    assert finding.evidences[0].src_endpoint is not None
    assert finding.evidences[0].src_endpoint.ip == "2001:db8:40::77"
    assert finding.evidences[0].user is not None
    assert finding.evidences[0].user.name == "tram-dispatcher-04"


def test_an_alert_without_an_id_is_rejected_alone():
    items = ElasticConnector().items(load("partial-missing-uuid.json"), NOW_MS)
    assert items[0].finding is not None
    assert items[0].finding.evidences[-1].dst_endpoint is not None
    assert [e.pointer for e in items[1].errors] == ["/context/alerts/1/kibana.alert.uuid"]
    assert items[1].pointer == "/context/alerts/1"


def test_unicode_survives():
    (finding,) = normalize(load("unicode.json"))
    assert finding.finding_info.title == "Zugriff auf Leitstelle aus dem Büronetz \u2013 東京 ✓"
    assert finding.evidences[0].user is not None
    assert finding.evidences[0].user.name == "Zoë Ångström"
    assert finding.severity_id is SeverityId.LOW


def test_body_without_context_alerts_names_the_missing_field():
    with pytest.raises(InvalidPayload) as caught:
        normalize(load("invalid-no-alerts.json"))
    assert [e.pointer for e in caught.value.errors] == ["/context/alerts"]


def test_raw_data_keeps_the_rule_and_the_alert():
    payload = load("nested-fields.json")
    (finding,) = normalize(payload)
    raw = json.loads(finding.raw_data or "")
    assert raw == {"rule": payload["context"]["rule"], "alert": payload["context"]["alerts"][0]}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"a.b.c": 1}, 1),
        ({"a": {"b": {"c": 2}}}, 2),
        ({"a": {"b.c": 3}}, 3),
        ({"a.b": {"c": 4}}, 4),
        ({"a": {"b": 5}}, None),
        ("not a dict", None),
    ],
)
def test_dig_reads_dotted_and_nested_keys(document, expected):
    assert dig(document, "a.b.c") == expected
