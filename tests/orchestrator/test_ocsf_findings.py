"""Producers' documented OCSF findings through the `generic` source: what they become.

The documents are tests/fixtures/ocsf/*.json, written from each producer's published
output (sources and the few substituted values in that folder's README), so these tests
check Bulkhead against the world rather than against samples written to fit it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from contracts.decision import DecideRequest, Verdict
from contracts.findings import ActivityId, ConfidenceId, Finding, SeverityId
from orchestrator.config import DEFAULT_POLICY_DIR, REPO_ROOT
from orchestrator.ingest.connectors.generic import GenericConnector
from orchestrator.ingest.entity import entity_of
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.input import containment_input, identity_records
from orchestrator.wiring.inventory import Inventory

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "ocsf"
SG_ARN = "arn:aws:ec2:us-east-1:522536594833:security-group/sg-0daf160f08dfed499"
CERT_ARN = "arn:aws:acm:eu-west-1:111122223333:certificate/e4dc1386-8b4b-402c-9fed-03269ee10006"
OKTA_APP = "/app/office365/1111111111/sso/wsfed/active"


@cache
def _text(name: str) -> str:
    return (FIXTURES / name).read_text()


def fixture(name: str) -> Any:
    return copy.deepcopy(json.loads(_text(name)))


def normalize(payload: Any) -> list[Finding]:
    return GenericConnector().normalize(payload)


def one(payload: Any) -> Finding:
    (finding,) = normalize(payload)
    return finding


def ips_of(finding: Finding) -> set[str]:
    sides = [s for e in finding.evidences for s in (e.src_endpoint, e.dst_endpoint) if s]
    return {s.ip for s in sides if s.ip}


def users_of(finding: Finding) -> set[str]:
    return {e.user.name for e in finding.evidences if e.user is not None and e.user.name}


@dataclass(frozen=True)
class Expected:
    entity: str
    severity: SeverityId
    ips: set[str]
    time: int
    product: str
    version: str
    activity: ActivityId = ActivityId.CREATE
    users: set[str] = field(default_factory=set)


EXPECTED = {
    "aws-security-hub.json": Expected(
        "AWS::IAM::AccessKey:ASIATMJPC7EXAMPLE",
        SeverityId.LOW,
        {"198.18.40.77"},
        1695135922487,
        "GuardDuty",
        "1.1.0",
    ),
    "aws-security-lake-v1.json": Expected(
        SG_ARN,
        SeverityId.INFORMATIONAL,
        set(),
        1659636559100,
        "Security Hub",
        "1.0.0-rc.2",
        activity=ActivityId.CLOSE,  # Security Finding, state_id 4 Resolved
    ),
    "crowdstrike.json": Expected(
        "eng-ws-03", SeverityId.HIGH, {"198.18.40.33"}, 1719309930000, "Falcon Insight", "1.6.0"
    ),
    "okta.json": Expected(
        OKTA_APP, SeverityId.UNKNOWN, {"198.18.40.77"}, 1723564700000, "Okta System Log", "1.3.0"
    ),
    "prowler.json": Expected(CERT_ARN, SeverityId.HIGH, set(), 1728049742000, "Prowler", "1.3.0"),
}


def test_every_accepted_fixture_has_an_expectation():
    names = {p.name for p in FIXTURES.glob("*.json") if not p.name.startswith("invalid-")}
    assert names == {*EXPECTED, "securityscorecard.json"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_normalizes_to_its_entity_severity_addresses_and_product(name: str):
    expected = EXPECTED[name]
    finding = one(fixture(name))
    assert entity_of(finding) == expected.entity
    assert finding.severity_id is expected.severity
    assert ips_of(finding) == expected.ips
    assert users_of(finding) == expected.users
    assert finding.activity_id is expected.activity
    assert finding.time == expected.time
    assert finding.metadata.product.name == expected.product
    assert finding.metadata.version == expected.version


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_kept_verbatim_in_raw_data(name: str):
    finding = one(fixture(name))
    assert finding.raw_data is not None
    assert json.loads(finding.raw_data) == fixture(name)


def test_aws_cloud_account_and_unmapped_attributes_stay_in_raw_data():
    finding = one(fixture("aws-security-hub.json"))
    assert finding.raw_data is not None
    raw = json.loads(finding.raw_data)
    assert raw["cloud"]["account"]["uid"] == "111111111111"
    assert raw["unmapped"]["RecordState"] == "ACTIVE"
    assert raw["metadata"]["profiles"] == ["cloud", "datetime", "linux"]


def test_finding_uids_and_titles_are_the_producers():
    aws = one(fixture("aws-security-hub.json"))
    assert aws.finding_info.uid.endswith("/finding/a6c556fcbc9bea427a19f8b787099a0b")
    assert aws.finding_info.title.startswith("AWS CloudTrail trail")
    lake = one(fixture("aws-security-lake-v1.json"))
    assert lake.finding_info.uid == "test"  # Security Finding: `finding.uid`
    assert lake.finding_info.title.startswith("EC2.19")


def test_crowdstrike_resource_is_the_host_not_the_process_id():
    """The gateway writes the process id to resources[].uid and the host to hostname."""
    finding = one(fixture("crowdstrike.json"))
    (resource,) = finding.resources
    assert resource.uid == "eng-ws-03"
    assert resource.name == "git"
    assert resource.type == "Process"


def test_securityscorecard_batch_of_four_security_findings_becomes_four_findings():
    findings = normalize(fixture("securityscorecard.json"))
    entities = ["198.18.40.21", "198.18.41.11", "198.18.41.12", "198.18.41.13"]
    assert [entity_of(f) for f in findings] == entities
    assert {f.severity_id for f in findings} == {SeverityId.INFORMATIONAL}
    assert all(ips_of(f) == {e} for f, e in zip(findings, entities, strict=True))
    # `confidence: 100` is no OCSF label and `status_id: -1` no OCSF status: neither costs
    # the finding, and neither is invented into a confidence.
    assert {f.confidence_id for f in findings} == {ConfidenceId.UNKNOWN}


def test_city_hosts_named_by_producers_are_found_in_the_inventory():
    """What the policy sees: the inventory asset behind a host name or an address."""
    inventory = Inventory.load(DEFAULT_POLICY_DIR)
    crowdstrike = one(fixture("crowdstrike.json"))
    scorecard = normalize(fixture("securityscorecard.json"))[0]
    assert inventory.asset_ids_for([crowdstrike]) == ["eng-ws-03"]
    assert inventory.asset_ids_for([scorecard]) == ["permits-app-01"]  # by 198.18.40.21


def test_ocsf_example_is_the_crowdstrike_fixture_and_the_default_policy_quarantines_its_host():
    example = REPO_ROOT / "examples" / "findings" / "ocsf-crowdstrike.json"
    assert json.loads(example.read_text()) == fixture("crowdstrike.json")
    finding = one(json.loads(example.read_text()))
    request = DecideRequest(incident_id="inc-eng-ws-03", findings=[finding])
    policy_input = containment_input(request, Inventory.load(DEFAULT_POLICY_DIR))
    decision = EmbeddedEngine(DEFAULT_POLICY_DIR).decide(policy_input)
    assert decision.verdict is Verdict.CONTAIN
    assert [s.target for s in decision.steps] == [{"device": "eng-ws-03"}]


@pytest.mark.parametrize("name", [*sorted(EXPECTED), "securityscorecard.json"])
def test_fixture_findings_survive_the_temporal_json_round_trip(name: str):
    for finding in normalize(fixture(name)):
        assert Finding.model_validate_json(finding.model_dump_json()) == finding


# --- where the entity comes from --------------------------------------------------------------


def test_a_finding_naming_only_observables_is_keyed_by_the_observed_address():
    document = fixture("aws-security-hub.json")
    del document["resources"], document["evidences"]
    document["observables"] = [o for o in document["observables"] if o["type_id"] == 2]
    finding = one(document)
    assert finding.resources == []
    assert entity_of(finding) == "198.18.40.77"


def test_a_resource_uid_observable_becomes_a_resource():
    document = fixture("aws-security-hub.json")
    del document["resources"], document["evidences"]
    finding = one(document)
    assert [r.uid for r in finding.resources] == ["AWS::IAM::AccessKey:ASIATMJPC7EXAMPLE"]


def test_observables_already_named_elsewhere_are_not_repeated():
    finding = one(fixture("aws-security-hub.json"))
    assert len(finding.evidences) == 1
    assert len(finding.resources) == 1


def test_user_name_email_and_hostname_observables_become_evidences():
    document = fixture("okta.json")
    del document["resources"], document["evidences"]
    document["observables"] = [
        {"name": "actor.user.name", "type": "User Name", "type_id": 4, "value": "svc-scada"},
        {"name": "actor.user.email_addr", "type": "Email Address", "type_id": 5, "value": "a@x"},
        {"name": "dst_endpoint.hostname", "type": "Hostname", "type_id": 1, "value": "cad-01"},
    ]
    finding = one(document)
    assert users_of(finding) == {"svc-scada", "a@x"}
    assert entity_of(finding) == "cad-01"  # an endpoint beats a user
    (host,) = [e.dst_endpoint for e in finding.evidences if e.dst_endpoint]
    assert host.hostname == "cad-01"  # the observable's name says dst


def test_a_finding_whose_only_entity_is_an_evidence_actor_is_keyed_by_that_user():
    document = fixture("okta.json")
    del document["resources"]
    document["evidences"] = [{"actor": {"user": {"name": "svc-scada", "uid": "00u1a2b3"}}}]
    finding = one(document)
    assert entity_of(finding) == "svc-scada"
    # The policy sees the shared account, and every system that holds it.
    inventory = Inventory.load(DEFAULT_POLICY_DIR)
    (identity,) = identity_records(inventory, [finding])
    assert identity["id"] == "svc-scada"


def test_evidence_user_and_a_different_actor_user_are_both_kept():
    document = fixture("okta.json")
    evidence = document["evidences"][0]
    evidence["user"] = {"name": "svc-permits"}
    evidence["actor"] = {"user": {"email_addr": "intruder@example.org"}}
    assert users_of(one(document)) == {"svc-permits", "intruder@example.org"}


def test_top_level_actor_of_the_host_profile_is_an_evidence_user():
    document = fixture("okta.json")
    document["actor"] = {"user": {"name": "svc-signals", "type_id": 1}}
    assert "svc-signals" in users_of(one(document))


def test_device_becomes_a_resource_and_its_address_an_endpoint():
    document = fixture("okta.json")
    del document["resources"]
    document["device"] = {"hostname": "tsc-0001", "ip": "198.18.10.11", "type_id": 99}
    finding = one(document)
    assert entity_of(finding) == "tsc-0001"
    assert "198.18.10.11" in ips_of(finding)
    assert Inventory.load(DEFAULT_POLICY_DIR).asset_ids_for([finding]) == ["tsc-0001"]


@pytest.mark.parametrize(
    ("resource", "zone"),
    [
        ({"uid": "tsc-0001", "zone": "traffic"}, "traffic"),
        ({"uid": "tsc-0001", "labels": ["owner=signals", "zone=traffic"]}, "traffic"),
        ({"uid": "tsc-0001", "labels": ["Zone: energy"]}, "energy"),
        ({"uid": "tsc-0001", "zone": "traffic", "labels": ["zone=energy"]}, "traffic"),
        ({"uid": "tsc-0001", "labels": ["name:public-wildcard-com", 7]}, None),
    ],
)
def test_zone_comes_from_the_resource_zone_else_a_zone_label(resource, zone):
    document = fixture("prowler.json")
    document["resources"] = [resource]
    assert one(document).resources[0].zone == zone


def test_a_resource_without_uid_is_keyed_by_its_name():
    """Okta's mapping names the targeted app by its path and gives no uid."""
    (resource,) = one(fixture("okta.json")).resources
    assert resource.uid == OKTA_APP


# --- severity, confidence, activity, time, title ----------------------------------------------


@pytest.mark.parametrize("severity", [0, 1, 2, 3, 4, 5, 6, 99])
def test_severity_id_passes_straight_through(severity: int):
    document = fixture("crowdstrike.json")
    document["severity_id"] = severity
    assert int(one(document).severity_id) == severity


def test_confidence_id_passes_through_and_the_confidence_label_is_the_fallback():
    document = fixture("okta.json")
    document["confidence"] = "High"
    assert one(document).confidence_id is ConfidenceId.HIGH
    document["confidence_id"] = 1
    assert one(document).confidence_id is ConfidenceId.LOW


def test_security_finding_in_progress_update_stays_an_update():
    document = fixture("aws-security-lake-v1.json")
    document["state_id"] = 2
    assert one(document).activity_id is ActivityId.UPDATE


def test_detection_finding_close_activity_closes():
    document = fixture("okta.json")
    document["activity_id"], document["type_uid"] = 3, 200403
    assert one(document).activity_id is ActivityId.CLOSE


def test_time_in_milliseconds_is_kept_and_seconds_are_read_as_seconds():
    document = fixture("okta.json")
    assert one(document).time == 1723564700000  # Okta's mapping writes seconds
    document["time"] = 1723564700123
    assert one(document).time == 1723564700123


@pytest.mark.parametrize(
    ("removed", "title"),
    [
        (("title",), "Request from suspicious actor"),  # the message
        (("title", "message"), "Detection Findings dc9fd3c0-598c-11ef-8478-2b7584bf8d5a"),
    ],
)
def test_title_is_derived_when_the_producer_gives_none(removed, title):
    """finding_info.title is only recommended from OCSF 1.4: its absence costs nothing."""
    document = fixture("okta.json")
    for name in removed:
        document.pop(name, None)
        document["finding_info"].pop(name, None)
    assert one(document).finding_info.title == title


def test_blank_title_falls_back_to_the_finding_types():
    document = fixture("aws-security-hub.json")
    document["finding_info"]["title"] = "  "
    title = "TTPs/Defense Evasion/Stealth:IAMUser-CloudTrailLoggingDisabled"
    assert one(document).finding_info.title == title


def test_an_overlong_uid_is_kept_as_a_stable_digest():
    document = fixture("okta.json")
    document["finding_info"]["uid"] = "u" * 300
    first, again = one(document), one(copy.deepcopy(document))
    assert first.finding_info.uid.startswith("sha256:")
    assert first.finding_info.uid == again.finding_info.uid
