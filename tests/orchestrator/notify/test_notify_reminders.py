"""Warnings ahead of time: an approval deadline near and a lease ending in 10 minutes,
sent only if the incident, asked when they are due, still calls for them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from notify_receivers import json_receiver
from prometheus_client import CollectorRegistry

from orchestrator.notify.channels import channels_of
from orchestrator.notify.notices import Kind, Notice
from orchestrator.notify.notifier import Notifier
from orchestrator.notify.reminders import Reminders, reminder_for, still_true
from orchestrator.policy.embedded import EmbeddedEngine

POLICIES = Path(__file__).resolve().parents[3] / "policies"
NOW = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat()


def notice(kind: Kind) -> Notice:
    return Notice(kind, "inc-1", 5, NOW.isoformat(), "s1")


def test_an_approval_is_reminded_5_minutes_or_half_its_time_before_its_deadline() -> None:
    far = reminder_for(notice(Kind.APPROVAL_NEEDED), at(60), NOW)
    near = reminder_for(notice(Kind.APPROVAL_NEEDED), at(4), NOW)
    assert far is not None and far.due == NOW + timedelta(minutes=55)
    assert near is not None and near.due == NOW + timedelta(minutes=2)
    assert far.kind == Kind.APPROVAL_DEADLINE_NEAR
    assert reminder_for(notice(Kind.APPROVAL_NEEDED), at(-1), NOW) is None
    assert reminder_for(notice(Kind.APPROVAL_NEEDED), None, NOW) is None


def test_a_lease_is_reminded_10_minutes_before_it_ends_if_it_still_holds() -> None:
    reminder = reminder_for(notice(Kind.STEP_HOLDS), at(30), NOW)
    assert reminder is not None and reminder.kind == Kind.LEASE_EXPIRING
    assert reminder.due == NOW + timedelta(minutes=20)
    assert reminder_for(notice(Kind.STEP_HOLDS), at(5), NOW) is None  # too late to warn
    assert still_true(reminder, {"state": "verified", "lease_expires_at": at(30)})
    assert not still_true(reminder, {"state": "verified", "lease_expires_at": at(90)})
    assert not still_true(reminder, {"state": "rolled_back", "lease_expires_at": at(30)})


class Facts:
    def __init__(self) -> None:
        self.now: dict[str, Any] = {}

    async def facts(self, incident_id: str, step_id: str | None) -> dict[str, Any]:
        return dict(self.now)


def pager_at(state: Path, port: int, lookup: Any) -> Notifier:
    """A worker's notifier on `state` (a second one on the same state dir is that worker
    after a restart)."""
    pager = Notifier(
        audit_path=state / "audit.jsonl",
        state_dir=state,
        channels=channels_of([f"duty=json://127.0.0.1:{port}/page"]),
        engine=EmbeddedEngine(POLICIES),
        lookup=lookup,
        public_url="https://bulkhead.city.example",
        registry=CollectorRegistry(),
    )
    pager.prepare()
    return pager


async def test_reminders_reach_the_receiver_only_while_they_still_hold(tmp_path) -> None:
    facts = Facts()
    with json_receiver() as duty:
        pager = pager_at(tmp_path, duty.port, facts)
        soon = datetime.now(UTC)
        facts.now = {
            "state": "awaiting_approval",
            "deadline": (soon + timedelta(minutes=4)).isoformat(),
        }
        await pager.route(Notice(Kind.APPROVAL_NEEDED, "inc-1", 1, soon.isoformat(), "s1"))
        lease_end = (soon + timedelta(minutes=30)).isoformat()
        facts.now = {"state": "verified", "lease_expires_at": lease_end}
        await pager.route(Notice(Kind.STEP_HOLDS, "inc-2", 1, soon.isoformat(), "s1"))
        assert len(pager.reminders) == 2
        facts.now = {"state": "approved"}  # approved meanwhile: no reminder
        await pager.remind(soon + timedelta(minutes=3))
        facts.now = {"state": "verified", "lease_expires_at": lease_end}
        await pager.remind(soon + timedelta(minutes=21))
        await pager.drain(pager.channels[0])
    titles = [b["title"] for b in duty.bodies]
    assert titles == [
        "[Bulkhead] Approval needed: incident inc-1",
        "[Bulkhead] Lease ending soon: incident inc-2",
    ]
    assert f"lease ends {lease_end}" in duty.bodies[1]["message"]
    logged = [json.loads(x)["kind"] for x in (tmp_path / "notifications.jsonl").read_text().split()]
    assert logged == ["approval_needed", "lease_expiring"]


async def test_an_approval_still_waiting_near_its_deadline_pages_again(tmp_path) -> None:
    facts = Facts()
    with json_receiver() as duty:
        pager = pager_at(tmp_path, duty.port, facts)
        soon = datetime.now(UTC)
        deadline = (soon + timedelta(minutes=20)).isoformat()
        facts.now = {"state": "awaiting_approval", "deadline": deadline, "required_approvals": 2}
        await pager.route(Notice(Kind.APPROVAL_NEEDED, "inc-1", 1, soon.isoformat(), "s1"))
        await pager.remind(soon + timedelta(minutes=16))
        await pager.drain(pager.channels[0])
    assert [b["title"] for b in duty.bodies] == [
        "[Bulkhead] Approval needed: incident inc-1",
        "[Bulkhead] Approval deadline near: incident inc-1",
    ]
    assert f"Approve by: {deadline}" in duty.bodies[1]["message"]
    assert "/console/incidents/inc-1" in duty.bodies[1]["message"]


async def test_a_reminder_set_before_a_worker_restart_is_sent_after_it(tmp_path) -> None:
    facts = Facts()
    soon = datetime.now(UTC)
    deadline = (soon + timedelta(minutes=20)).isoformat()
    facts.now = {"state": "awaiting_approval", "deadline": deadline}
    with json_receiver() as duty:
        before = pager_at(tmp_path, duty.port, facts)
        needed = Notice(Kind.APPROVAL_NEEDED, "inc-1", 1, soon.isoformat(), "s1")
        await before.route(needed)
        await before.route(needed)  # the entry read again (a cursor saved before a crash)
        assert len(before.reminders) == 1
        del before  # the worker stops; its reminder is on disk

        after = pager_at(tmp_path, duty.port, facts)
        assert len(after.reminders) == 1
        await after.remind(soon + timedelta(minutes=16))
        await after.drain(after.channels[0])
        assert list((tmp_path / "reminders").glob("*.json")) == [], "sent, then forgotten"
        again = pager_at(tmp_path, duty.port, facts)
        assert len(again.reminders) == 0
    assert [b["title"] for b in duty.bodies] == [
        "[Bulkhead] Approval needed: incident inc-1",
        "[Bulkhead] Approval deadline near: incident inc-1",
    ]


class Flaky(Facts):
    """The incident cannot be asked `failures` more times (Temporal unreachable): the
    worker's lookup (IncidentFacts) then logs and answers nothing, not an error."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def facts(self, incident_id: str, step_id: str | None) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            return {}
        return await super().facts(incident_id, step_id)


async def test_a_reminder_whose_incident_cannot_be_asked_is_tried_again(tmp_path) -> None:
    facts = Flaky()
    soon = datetime.now(UTC)
    lease_end = (soon + timedelta(minutes=30)).isoformat()
    facts.now = {"state": "verified", "lease_expires_at": lease_end}
    with json_receiver() as duty:
        pager = pager_at(tmp_path, duty.port, facts)
        await pager.route(Notice(Kind.STEP_HOLDS, "inc-2", 1, soon.isoformat(), "s1"))
        facts.failures = 1
        await pager.remind(soon + timedelta(minutes=21))  # the lookup fails
        assert len(pager.reminders) == 1, "kept, to be tried again"
        assert len(list((tmp_path / "reminders").glob("*.json"))) == 1
        await pager.remind(soon + timedelta(minutes=21, seconds=10))  # not yet
        await pager.remind(soon + timedelta(minutes=22))
        await pager.drain(pager.channels[0])
    assert [b["title"] for b in duty.bodies] == ["[Bulkhead] Lease ending soon: incident inc-2"]


async def test_a_warning_whose_moment_passed_while_no_worker_ran_is_not_sent(tmp_path) -> None:
    facts = Facts()
    soon = datetime.now(UTC)
    lease_end = soon + timedelta(minutes=30)
    facts.now = {"state": "verified", "lease_expires_at": lease_end.isoformat()}
    with json_receiver() as duty:
        before = pager_at(tmp_path, duty.port, facts)
        await before.route(Notice(Kind.STEP_HOLDS, "inc-3", 1, soon.isoformat(), "s1"))
        after = pager_at(tmp_path, duty.port, facts)  # back an hour later
        await after.remind(soon + timedelta(hours=1))
        await after.drain(after.channels[0])
        assert len(after.reminders) == 0
        assert list((tmp_path / "reminders").glob("*.json")) == []
    assert duty.bodies == []


def test_an_unreadable_reminder_file_is_set_aside(tmp_path) -> None:
    folder = tmp_path / "reminders"
    folder.mkdir()
    (folder / ("0" * 32 + ".json")).write_text("{not json")
    assert Reminders(folder).load() == 0
    assert [p.suffix for p in folder.iterdir()] == [".unreadable"]
