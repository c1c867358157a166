"""Step outcomes as OCSF Remediation events: which outcome is which activity and status,
what the trail adds (policy version, finding uids), stable ids, and every event checked
against the schema's own facts (tests/fixtures/ocsf_remediation, read from ocsf-schema)."""

from __future__ import annotations

from typing import Any

import pytest
from event_receivers import SCHEMA, schema_problems

from contracts.incident import AuditEntry
from orchestrator.events.lookup import StepFacts
from orchestrator.events.ocsf import remediation_event
from orchestrator.events.trail import Decided, Outcome, StepOutcome, Trail, event_id

KEY = b"k" * 32
ENUMS = SCHEMA["classes"]["7001"]["enums"]
ACTIVITY = {caption: int(uid) for uid, caption in ENUMS["activity_id"].items()}
STATUS = {caption: int(uid) for uid, caption in ENUMS["status_id"].items()}
INCIDENT = "198.18.40.33"
DECIDED = Decided("sha256:policy-a", "decision-1", ("det-1", "det-2"), 2)


def outcome(kind: Outcome, *, undoing: bool = False, step: str = "step-1") -> StepOutcome:
    return StepOutcome(
        incident_id=INCIDENT,
        seq=7,
        at="2026-11-26T10:00:01.250000+00:00",
        step_id=step,
        outcome=kind,
        reason="why",
        undoing=undoing,
        decided=DECIDED,
    )


def facts(adapter: str, action: str, **target: str) -> StepFacts:
    return StepFacts(adapter=adapter, action=action, target=target or {"asset": "tsc-0001"})


@pytest.mark.parametrize(
    ("kind", "undoing", "adapter", "action", "expected"),
    [
        (Outcome.CONTAINED, False, "nftables", "contain", (7004, "Isolate", "Success")),
        (Outcome.CONTAINED, False, "modbus", "set", (7001, "Isolate", "Success")),
        (Outcome.CONTAINED, False, "ldap", "deny", (7001, "Evict", "Success")),
        (Outcome.REVERTED, False, "nftables", "contain", (7004, "Restore", "Success")),
        (Outcome.REVERTED, False, "opcua", "set", (7001, "Restore", "Success")),
        (Outcome.FAILED, False, "scim", "deny", (7001, "Evict", "Failure")),
        (Outcome.FAILED, True, "nftables", "contain", (7004, "Restore", "Failure")),
        (Outcome.ESCALATED, False, "http", "set", (7001, "Isolate", "Other")),
        (Outcome.CONTAINED, False, "vault", "rotate", (7001, "Other", "Success")),
    ],
)
def test_each_outcome_is_its_activity_and_status(kind, undoing, adapter, action, expected):
    class_uid, activity, status = expected
    event = remediation_event(outcome(kind, undoing=undoing), facts(adapter, action), "id-1")
    assert schema_problems(event) == []
    assert (event["class_uid"], event["activity_id"], event["status_id"]) == (
        class_uid,
        ACTIVITY[activity],
        STATUS[status],
    )
    assert event["type_uid"] == class_uid * 100 + ACTIVITY[activity]


def test_an_escalation_says_so_and_an_unknown_action_names_itself():
    escalated = remediation_event(outcome(Outcome.ESCALATED), facts("modbus", "set"), "id")
    assert (escalated["status_id"], escalated["status"]) == (99, "Escalated")
    other = remediation_event(outcome(Outcome.CONTAINED), facts("vault", "rotate"), "id")
    assert (other["activity_id"], other["activity_name"]) == (99, "rotate")


def test_the_event_carries_what_a_siem_correlates_on():
    event = remediation_event(
        outcome(Outcome.CONTAINED, step="quarantine:eng-ws-03"),
        facts("nftables", "contain", device="eng-ws-03"),
        "5f2b",
    )
    assert event["command_uid"] == "quarantine:eng-ws-03"
    assert event["metadata"]["uid"] == "5f2b"
    assert event["metadata"]["correlation_uid"] == INCIDENT
    assert event["device"]["name"] == "eng-ws-03"
    assert event["policy"]["version"] == "sha256:policy-a"
    assert event["policy"]["uid"] == "decision-1"
    assert event["time"] == 1795687201250  # 2026-11-26T10:00:01.250Z
    ours = event["unmapped"]["bulkhead"]
    assert ours["incident_id"] == INCIDENT
    assert ours["finding_uids"] == ["det-1", "det-2"]
    assert ours["step"]["target"] == {"device": "eng-ws-03"}
    assert event["connection_info"]["direction_id"] == 99


def test_without_the_incident_the_event_says_what_the_trail_knows():
    event = remediation_event(outcome(Outcome.CONTAINED), None, "id")
    assert schema_problems(event) == []
    assert (event["class_uid"], event["activity_id"]) == (7001, ACTIVITY["Unknown"])
    assert event["policy"]["version"] == "sha256:policy-a"
    assert "device" not in event


def test_a_zone_or_an_identity_is_no_device():
    zone = remediation_event(
        outcome(Outcome.CONTAINED), facts("nftables", "contain", zone="energy"), "i"
    )
    identity = remediation_event(
        outcome(Outcome.CONTAINED), facts("ldap", "deny", identity="svc-scada", system="dir"), "i"
    )
    assert "device" not in zone and "device" not in identity
    assert schema_problems(zone) == [] and schema_problems(identity) == []
    assert identity["unmapped"]["bulkhead"]["step"]["target"]["identity"] == "svc-scada"


def test_the_schema_check_itself_catches_what_ocsf_forbids():
    """The check is only worth something if it fails on a broken event."""
    good = remediation_event(outcome(Outcome.CONTAINED), facts("nftables", "contain"), "id")
    broken: list[dict[str, Any]] = [
        {**good, "type_uid": 700499},
        {k: v for k, v in good.items() if k != "connection_info"},
        {k: v for k, v in good.items() if k != "command_uid"},
        {**good, "activity_id": 6},  # Deceive: added after 1.8.0
        {**good, "status_id": 7},
        {**good, "severity_id": True},
        {**good, "time": 1795687201},  # seconds
        {**good, "metadata": {**good["metadata"], "product": {"vendor_name": "Bulkhead"}}},
        {**good, "device": {"name": "x"}},
        {**good, "finding_info": {"uid": "x"}},
    ]
    assert all(schema_problems(event) for event in broken)


# --- stable ids -------------------------------------------------------------------------


def test_the_same_outcome_has_the_same_id_and_others_do_not():
    first = event_id(KEY, INCIDENT, 7)
    assert first == event_id(KEY, INCIDENT, 7)
    assert first != event_id(KEY, INCIDENT, 8)
    assert first != event_id(KEY, f"{INCIDENT}@2", 7)
    assert first != event_id(b"another deployment's key.......", INCIDENT, 7)


# --- what the trail says ----------------------------------------------------------------


def entries(*kinds: tuple[str, dict[str, Any]]) -> list[AuditEntry]:
    return [
        AuditEntry(
            incident_id=INCIDENT, seq=n, at=f"2026-11-26T10:00:{n:02d}+00:00", kind=k, detail=d
        )
        for n, (k, d) in enumerate(kinds, start=1)
    ]


def read(trail: list[AuditEntry]) -> list[StepOutcome]:
    reader = Trail()
    return [o for o in (reader.read(e) for e in trail) if o is not None]


def test_a_contained_then_released_step_is_two_events_with_the_planning_decision():
    found = read(
        entries(
            ("finding.received", {"uid": "det-1"}),
            ("decision", {"policy_version": "v1", "decision_id": "d1", "steps": ["s"]}),
            ("step.planned", {"step": "s", "reversible": True}),
            ("finding.received", {"uid": "det-2"}),
            ("decision", {"policy_version": "v2", "decision_id": "d2", "steps": ["s"]}),
            ("step.intent", {"step": "s", "before": {}, "after": {}}),
            ("step.applying", {"step": "s"}),
            ("step.applied", {"step": "s"}),
            ("step.verified", {"step": "s", "observed": {}}),
            ("release.requested", {"principal": "dora", "reason": "threat removed"}),
            ("step.rolling_back", {"step": "s"}),
            ("step.rolled_back", {"step": "s"}),
            ("incident.released", {"principal": "dora"}),
        )
    )
    assert [(o.outcome, o.seq) for o in found] == [(Outcome.CONTAINED, 9), (Outcome.REVERTED, 12)]
    # The decision that planned the step, and the findings it answered, not the later one.
    assert found[0].decided == Decided("v1", "d1", ("det-1",), 1)
    assert found[1].reason == "incident released by dora: threat removed"


def test_failures_escalations_and_their_followers_are_one_event_each():
    found = read(
        entries(
            ("step.planned", {"step": "a", "reversible": True}),
            ("step.applied", {"step": "a"}),
            ("step.failed", {"step": "a", "error": "verification failed: still remote"}),
            ("incident.escalated", {"reason": "step a: verification failed: still remote"}),
            ("step.rolling_back", {"step": "a"}),
            ("step.rolled_back", {"step": "a"}),
            ("step.planned", {"step": "b", "awaiting_approval": True}),
            ("approval.timeout", {"step": "b", "on_timeout": "escalate"}),
            ("incident.escalated", {"reason": "step b: nobody approved it in time"}),
            ("step.escalated", {"step": "b"}),  # should the workflow record the state too
            ("step.planned", {"step": "c", "reversible": True}),
            ("step.verified", {"step": "c"}),
            ("step.rolling_back", {"step": "c"}),
            ("step.failed", {"step": "c", "error": "rollback failed: timeout"}),
            ("step.planned", {"step": "d", "reversible": False}),
            ("step.verified", {"step": "d"}),
            ("guard.tripped", {"step": "d", "services": ["emergency-dispatch"]}),
            ("step.planned", {"step": "e"}),
            ("step.verified", {"step": "e"}),
            ("guard.unavailable", {"step": "e", "moment": "after", "error": "timeout"}),
            ("approval.timeout", {"step": "f", "on_timeout": "deny"}),
        )
    )
    assert [(o.step_id, o.outcome, o.undoing) for o in found] == [
        ("a", Outcome.FAILED, False),
        ("a", Outcome.REVERTED, False),
        ("b", Outcome.ESCALATED, False),
        ("c", Outcome.CONTAINED, False),
        ("c", Outcome.FAILED, True),
        ("d", Outcome.CONTAINED, False),
        ("d", Outcome.ESCALATED, False),
        ("e", Outcome.CONTAINED, False),
        ("e", Outcome.ESCALATED, False),
    ]
    assert found[1].reason == "undone after: verification failed: still remote"
    assert "emergency-dispatch" in found[6].reason


def test_a_lease_expiry_and_a_drift_reapply_say_why():
    found = read(
        entries(
            ("step.verified", {"step": "s"}),
            ("lease.expired", {"step": "s"}),
            ("step.rolling_back", {"step": "s"}),
            ("step.rolled_back", {"step": "s"}),
            ("step.verified", {"step": "t", "reapplied": True}),
        )
    )
    assert [o.reason for o in found] == [
        "verified",
        "its lease expired",
        "verified (re-applied after drift)",
    ]
