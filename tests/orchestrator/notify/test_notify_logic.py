"""Notices from the trail, the storm window and its digest, channel tags, and routing
through the real notify policy (embedded regorus)."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.incident import AuditEntry
from orchestrator.notify.channels import ChannelError, channels_of
from orchestrator.notify.messages import digest_message, message_of
from orchestrator.notify.notices import Kind, Notice, Reader
from orchestrator.notify.window import Window
from orchestrator.policy.embedded import EmbeddedEngine

POLICIES = Path(__file__).resolve().parents[3] / "policies"


def entry(kind: str, seq: int = 1, incident: str = "inc-1", **detail: object) -> AuditEntry:
    return AuditEntry(incident_id=incident, seq=seq, at="2026-12-06T23:00:00Z", kind=kind,
                      detail=dict(detail))  # fmt: skip


def notice(incident: str, kind: Kind = Kind.APPROVAL_NEEDED) -> Notice:
    return Notice(kind, incident, 1, "2026-12-06T23:00:00Z", "s1")


def test_reader_names_what_a_person_must_hear_of() -> None:
    reader = Reader()
    read = [
        reader.read(entry("step.planned", step="s1", awaiting_approval=True)),
        reader.read(entry("approval.timeout", step="s1", on_timeout="escalate")),
        reader.read(entry("approval.timeout", step="s1", on_timeout="deny")),
        reader.read(entry("step.failed", step="s2", error="adapter said no")),
        reader.read(entry("guard.tripped", step="s3", services=["scada"])),
        reader.read(entry("lease.expired", step="s4")),
        reader.read(entry("step.rolled_back", step="s4")),
        reader.read(entry("release.requested", principal="ana", reason="false positive")),
        reader.read(entry("step.intent", step="s1")),
        reader.read(entry("step.planned", step="s5", awaiting_approval=False)),
        reader.read(entry("decision", verdict="escalate", reasons=["unknown asset"])),
        reader.read(entry("decision", verdict="contain", reasons=[])),
        reader.read(entry("guard.unavailable", step="s6", moment="after", error="timeout")),
    ]
    kinds = [n.kind if n else None for n in read]
    assert kinds == [
        Kind.APPROVAL_NEEDED, Kind.APPROVAL_ESCALATED, None, Kind.STEP_FAILED,
        Kind.GUARD_ROLLBACK, None, Kind.LEASE_REVERTED, Kind.RELEASED, None, None,
        Kind.DECISION_ESCALATED, None, Kind.STEP_ESCALATED,
    ]  # fmt: skip
    assert read[3] is not None and read[3].reason == "adapter said no"


def test_a_window_sends_a_few_then_one_digest() -> None:
    window = Window(window_s=10, burst=3)
    sent = [window.offer(notice(f"inc-{i}"), now=0.0) for i in range(1000)]
    assert sum(sent) == 3
    assert window.due(now=5.0) is None  # the window has not ended
    digest = window.due(now=10.0)
    assert digest is not None and digest.incidents == 997
    assert digest.text() == "997 incidents in the last 10 s: 997 need approval"


def test_one_message_per_incident_and_kind_per_window() -> None:
    window = Window(window_s=10, burst=3)
    assert window.offer(notice("inc-1"), now=0.0)
    assert not window.offer(notice("inc-1"), now=1.0)  # the same incident and kind
    assert window.offer(notice("inc-1", Kind.STEP_FAILED), now=2.0)
    assert window.offer(notice("inc-1"), now=11.0)  # a new window
    assert window.dropped == 1


def test_a_lasting_storm_costs_a_digest_per_doubling_window() -> None:
    window = Window(window_s=10, burst=3, max_window_s=300)
    messages = 0
    now = 0.0
    for i in range(1000):  # 1,000 incidents over 100 s
        now = i * 0.1
        messages += window.offer(notice(f"inc-{i}"), now=now)
        messages += window.due(now) is not None
    messages += window.due(now + 1000) is not None
    assert messages <= 10


def test_a_calm_window_sends_each_on_its_own_again() -> None:
    window = Window(window_s=10, burst=3)
    for i in range(5):
        window.offer(notice(f"inc-{i}"), now=0.0)
    assert window.due(10.0) is not None
    assert window.due(40.0) is None
    assert window.offer(notice("later"), now=60.0)


def test_digest_counts_incidents_per_kind_and_links_the_console() -> None:
    window = Window(window_s=10, burst=0)
    for i in range(37):
        window.offer(notice(f"inc-{i}", Kind.INCIDENT_OPENED), now=0.0)
    for i in range(4):
        window.offer(notice(f"inc-{i}"), now=0.0)
    digest = window.due(10.0)
    assert digest is not None
    title, body = digest_message(digest, "https://bulkhead.example")
    assert "37 incidents in the last 10 s: 37 opened, 4 need approval" in title
    assert "https://bulkhead.example/console/incidents/inc-0" in body


def test_an_approval_message_carries_plan_deadline_and_link() -> None:
    facts = {"zone": "energy", "plan": "set rtu-e01 to local_manual; was remote",
             "blast_radius": ["rtu-e01: remote -> local_manual"], "required_approvals": 2,
             "roles_needed": ["duty-officer"], "deadline": "2026-12-06T23:30:00Z",
             "adapter": "modbus", "action": "set_mode"}  # fmt: skip
    item = Notice(Kind.APPROVAL_NEEDED, "inc-7", 3, "2026-12-06T23:00:00Z", "s1", facts=facts)
    title, body = message_of(item, "http://127.0.0.1:8080/")
    assert "Approval needed" in title and "inc-7" in title
    for part in ("Zone: energy", "Plan: set rtu-e01", "Blast radius: rtu-e01",
                 "Approvals needed: 2", "duty-officer", "Approve by: 2026-12-06T23:30:00Z",
                 "Console: http://127.0.0.1:8080/console/incidents/inc-7#step-s1"):  # fmt: skip
        assert part in body


def test_channel_tags_in_both_spellings() -> None:
    duty, log, plain = channels_of(
        ["duty,ops=json://127.0.0.1:9001/hook", "json://127.0.0.1:9002/x?tag=log", "json://h/"]
    )
    assert duty.tags == {"duty", "ops"} and duty.url == "json://127.0.0.1:9001/hook"
    assert log.tags == {"log"} and "tag=" not in log.url
    assert duty.wants(["duty"]) and not duty.wants(["log"]) and not duty.wants([])
    assert plain.wants(["anything"])  # no tags: everything the policy routes
    with pytest.raises(ChannelError, match=r"notify_urls\[0\]"):
        channels_of(["nonsense://secret-token@"])


def test_the_default_policy_pages_approvals_and_logs_news() -> None:
    engine = EmbeddedEngine(POLICIES)
    assert engine.notify({"kind": "approval_needed", "roles_needed": []}) == ["duty", "log"]
    assert engine.notify({"kind": "guard_rollback"}) == ["duty", "log"]
    assert engine.notify({"kind": "released"}) == ["log"]
    assert engine.notify({"kind": "something.else"}) == []
