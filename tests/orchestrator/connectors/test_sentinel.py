"""`sentinel`: the Logic App incident trigger body to a finding keyed by incident GUID."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.findings import ActivityId, Finding, SeverityId
from orchestrator.config import REPO_ROOT
from orchestrator.ingest.connectors.base import InvalidPayload
from orchestrator.ingest.connectors.sentinel import SentinelConnector

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "siem" / "sentinel"
NOW_MS = 1_800_000_000_000


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def one(payload: Any) -> Finding:
    (finding,) = SentinelConnector().normalize(payload, NOW_MS)
    return finding


def test_created_incident_names_rule_severity_host_ip_and_account():
    finding = one(load("created.json"))
    assert finding.finding_info.uid == "sentinel:2d8f4a1c-6e3b-4b9d-8f0a-7c5e3d1b9a2f"
    assert finding.activity_id is ActivityId.CREATE
    assert finding.severity_id is SeverityId.HIGH
    assert finding.finding_info.analytic is not None
    assert finding.finding_info.analytic.uid == "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
    assert (
        finding.finding_info.analytic.name == "Shared service account sign-in from an unusual host"
    )
    assert [r.uid for r in finding.resources] == ["scada-e01"]
    users = [e.user.name for e in finding.evidences if e.user]
    ips = [e.src_endpoint.ip for e in finding.evidences if e.src_endpoint]
    assert users == ["svc-scada"]
    assert ips == ["198.18.40.77"]
    assert finding.time == 1_796_227_331_000  # createdTimeUtc


def test_update_and_close_keep_the_uid_and_change_the_activity():
    created, updated, closed = (
        one(load(n)) for n in ("created.json", "updated.json", "closed.json")
    )
    assert created.finding_info.uid == updated.finding_info.uid == closed.finding_info.uid
    assert updated.activity_id is ActivityId.UPDATE
    assert closed.activity_id is ActivityId.CLOSE
    assert updated.time == 1_796_228_400_000  # lastModifiedTimeUtc of the update
    assert len(updated.evidences) == len(created.evidences) + 1


def test_minimal_incident_without_entities_or_rules():
    finding = one(load("minimal.json"))
    assert finding.severity_id is SeverityId.LOW
    assert finding.finding_info.analytic is None
    assert finding.resources == []
    assert finding.evidences == []


def test_hundreds_of_entities_are_capped_and_unicode_survives():
    finding = one(load("many-entities-unicode.json"))
    assert finding.finding_info.title == "Ransomware precursor on 300 hosts — Überwachung 監視"
    assert len(finding.resources) == 256
    assert len(finding.evidences) == 256


def test_incident_named_only_by_its_arm_id_still_gets_its_guid():
    payload = load("minimal.json")
    guid = payload["object"].pop("name")
    payload["object"]["id"] = (
        f"/subscriptions/s/providers/Microsoft.SecurityInsights/Incidents/{guid}"
    )
    assert one(payload).finding_info.uid == f"sentinel:{guid}"


def test_incident_without_name_or_id_is_rejected():
    payload = load("minimal.json")
    del payload["object"]["name"]
    with pytest.raises(InvalidPayload) as caught:
        one(payload)
    assert [e.pointer for e in caught.value.errors] == ["/object/name"]


def test_alert_trigger_is_skipped_not_rejected():
    (item,) = SentinelConnector().items(load("ignored-alert-schema.json"), NOW_MS)
    assert item.finding is None
    assert item.errors == ()
    assert item.ignored == "objectSchemaType 'Alert' is not an incident"


def test_missing_title_and_bad_time_are_named():
    with pytest.raises(InvalidPayload) as caught:
        one(load("invalid-no-title.json"))
    assert sorted(e.pointer for e in caught.value.errors) == [
        "/object/properties/createdTimeUtc",
        "/object/properties/title",
    ]
