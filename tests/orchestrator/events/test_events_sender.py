"""The sender between the audit trail and the sinks: sinks down then back (nothing lost,
nothing twice), a restart, an event a sink refuses, an incident that cannot be asked.

The trail is written through the worker's own sink (sealed JSONL); the receivers are
real (a Standard Webhooks endpoint, Debian's rsyslog); only the incident lookup is the
shipped fake, since no Temporal runs here (tests/test_e2e_events.py has it)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from event_receivers import Rsyslog, WebhookReceiver, needs_rsyslog, schema_problems
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from contracts.incident import AuditEntry
from orchestrator.audit.sink import JsonlAuditSink
from orchestrator.config import new_webhook_secret
from orchestrator.events.lookup import StaticLookup, StepFacts
from orchestrator.events.outbox import Outbox
from orchestrator.events.sender import EventSender, Pacing
from orchestrator.events.sinks import Sink, SyslogSink, WebhookSink
from orchestrator.events.trail import event_id

INCIDENT = "198.18.40.33"
FACTS = StepFacts("nftables", "contain", {"device": "eng-ws-03"})
FAST = Pacing(poll_s=0.02, retry_min_s=0.05, retry_max_s=0.2, standby_s=0.05)


class Trail:
    """Entries as the workflow records them, sealed into audit.jsonl by the worker's sink."""

    def __init__(self, path: Path) -> None:
        self.sink = JsonlAuditSink(path, key=b"a" * 32)
        self.seq = 0

    def write(self, *kinds: tuple[str, dict[str, Any]], incident: str = INCIDENT) -> None:
        entries = []
        for kind, detail in kinds:
            self.seq += 1
            at = f"2026-11-26T10:{self.seq // 60:02d}:{self.seq % 60:02d}+00:00"
            entries.append(
                AuditEntry(incident_id=incident, seq=self.seq, at=at, kind=kind, detail=detail)
            )
        self.sink.seal(entries)

    def contain_and_release(self, step: str = "quarantine:eng-ws-03") -> None:
        self.write(
            ("finding.received", {"uid": "det-7"}),
            ("decision", {"policy_version": "sha256:v1", "decision_id": "d-1", "steps": [step]}),
            ("step.planned", {"step": step, "reversible": True}),
            ("step.applying", {"step": step}),
            ("step.applied", {"step": step}),
            ("step.verified", {"step": step}),
            ("release.requested", {"principal": "dora", "reason": "clean"}),
            ("step.rolling_back", {"step": step}),
            ("step.rolled_back", {"step": step}),
        )


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.trail = Trail(tmp_path / "audit.jsonl")
        self.lookup = StaticLookup({(INCIDENT, "quarantine:eng-ws-03"): FACTS})
        self.webhook = WebhookReceiver(new_webhook_secret())
        self.rsyslog = Rsyslog(tmp_path / "rsyslog")
        self.rsyslog.directory.mkdir()
        self.registry = CollectorRegistry()

    def sender(self, *, with_syslog: bool = True, pacing: Pacing = FAST) -> EventSender:
        sinks: list[Sink] = [WebhookSink(self.webhook.url, self.webhook.secret)]
        if with_syslog:
            sinks.append(SyslogSink(f"127.0.0.1:{self.rsyslog.port}", timeout_s=2))
        self.registry = CollectorRegistry()
        sender = EventSender(
            audit_path=self.trail.sink.path,
            outbox=Outbox(self.root / "events", [s.name for s in sinks]),
            sinks=sinks,
            lookup=self.lookup,
            id_key=b"k" * 32,
            registry=self.registry,
            pacing=pacing,
        )
        sender.prepare()
        return sender

    def count(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def setup(tmp_path: Path):
    made = Setup(tmp_path)
    yield made
    made.webhook.stop()
    made.rsyslog.stop()


@contextlib.asynccontextmanager
async def running(sender: EventSender) -> AsyncIterator[None]:
    task = asyncio.ensure_future(sender.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@needs_rsyslog
async def test_sinks_down_then_back_get_every_event_once(setup):
    async with running(setup.sender()):
        setup.trail.contain_and_release()
        await until(
            lambda: (
                setup.count("bulkhead_events_total", sink="webhook", outcome="failed") > 0
                and setup.count("bulkhead_events_total", sink="syslog", outcome="failed") > 0
            ),
            "both sinks to fail",
        )
        await until(
            lambda: (
                setup.count("bulkhead_events_queued", sink="webhook") == 2
                and setup.count("bulkhead_events_queued", sink="syslog") == 2
            ),
            "both events queued for both sinks",
        )
        # The SIEM comes back on the same addresses.
        setup.webhook.start()
        setup.rsyslog.start()
        await until(lambda: len(setup.webhook.events) == 2, "the webhook to get both")
        messages = await setup.rsyslog.wait_for(2)
        await until(
            lambda: (
                setup.count("bulkhead_events_queued", sink="syslog") == 0
                and setup.count("bulkhead_events_queued", sink="webhook") == 0
            ),
            "empty queues",
        )
    assert setup.webhook.deliveries == 2, "each event once"
    assert len(messages) == 2
    events = list(setup.webhook.events.values())
    assert [(e["activity_name"], e["status"]) for e in events] == [
        ("Isolate", "Success"),
        ("Restore", "Success"),
    ]
    assert [m["event"] for m in messages] == events
    assert all(schema_problems(e) == [] for e in events)
    assert events[0]["policy"]["version"] == "sha256:v1"
    assert events[0]["unmapped"]["bulkhead"]["finding_uids"] == ["det-7"]
    assert events[1]["status_detail"] == "incident released by dora: clean"
    assert setup.count("bulkhead_events_total", sink="webhook", outcome="delivered") == 2
    assert list((setup.root / "events" / "webhook").glob("*.json")) == []


async def test_a_restart_sends_what_was_queued_and_repeats_nothing(setup):
    async with running(setup.sender(with_syslog=False)):
        setup.trail.contain_and_release()
        await until(
            lambda: len(list((setup.root / "events/webhook").glob("*.json"))) == 2, "a queue"
        )
    setup.webhook.start()
    async with running(setup.sender(with_syslog=False)):
        await until(lambda: len(setup.webhook.events) == 2, "the queued events")
        setup.trail.write(("step.verified", {"step": "quarantine:eng-ws-03", "reapplied": True}))
        await until(lambda: len(setup.webhook.events) == 3, "the new event")
        await asyncio.sleep(0.2)
    assert setup.webhook.deliveries == 3
    async with running(setup.sender(with_syslog=False)):
        await asyncio.sleep(0.3)  # a start reads on from where the last one stopped
    assert setup.webhook.deliveries == 3
    ids = list(setup.webhook.events)
    # Read again from the start (a lost cursor): the same outcomes get the same ids.
    (setup.root / "events/cursor.json").write_text('{"offset": 0, "inode": null}')
    async with running(setup.sender(with_syslog=False)):
        await until(lambda: setup.webhook.deliveries == 6, "the repeats")
    assert list(setup.webhook.events) == ids


async def test_an_event_the_sink_refuses_holds_no_other_up(setup):
    setup.webhook.start()
    refused = event_id(b"k" * 32, INCIDENT, 1)
    setup.webhook.refuse.add(refused)
    async with running(setup.sender(with_syslog=False)):
        setup.trail.write(
            ("step.verified", {"step": "quarantine:eng-ws-03"}),
            ("step.verified", {"step": "isolate:energy"}),
            ("step.verified", {"step": "fallback:tsc-0001"}),
        )
        await until(lambda: len(setup.webhook.events) == 2, "the two not refused")
        assert refused not in setup.webhook.events
        assert setup.count("bulkhead_events_total", sink="webhook", outcome="rejected") >= 1
        await until(lambda: setup.count("bulkhead_events_queued", sink="webhook") == 1, "one left")
        setup.webhook.refuse.clear()  # the SIEM's parser is fixed
        await until(lambda: refused in setup.webhook.events, "the refused one, once accepted")


async def test_while_the_incident_cannot_be_asked_events_wait_then_go(setup):
    setup.webhook.start()
    setup.lookup.unavailable = True
    async with running(setup.sender(with_syslog=False)):
        setup.trail.contain_and_release()
        await until(lambda: setup.lookup.calls >= 3, "retries of the lookup")
        assert setup.webhook.events == {}
        setup.lookup.unavailable = False
        await until(lambda: len(setup.webhook.events) == 2, "both events")
    assert [e["class_uid"] for e in setup.webhook.events.values()] == [7004, 7004]


async def test_an_incident_that_never_answers_holds_its_event_only_so_long(setup):
    setup.webhook.start()
    setup.lookup.unavailable = True
    patience = Pacing(poll_s=0.02, retry_min_s=0.05, retry_max_s=0.1, lookup_patience_s=0.3)
    async with running(setup.sender(with_syslog=False, pacing=patience)):
        setup.trail.contain_and_release()
        await until(lambda: len(setup.webhook.events) == 2, "both events, without the target")
    contain, restore = setup.webhook.events.values()
    assert (contain["class_uid"], contain["activity_name"]) == (7001, "Unknown")
    assert contain["command_uid"] == "quarantine:eng-ws-03"
    assert contain["policy"]["version"] == "sha256:v1", "what the trail knows is still there"
    assert restore["activity_name"] == "Restore"


async def test_a_first_start_reports_from_now_on_with_what_came_before(setup):
    """Turned on in a running deployment: no flood of history, but the decision read
    before the start still gives the next event its policy version and findings."""
    setup.trail.write(
        ("finding.received", {"uid": "det-old"}),
        ("decision", {"policy_version": "sha256:v0", "decision_id": "d-0", "steps": ["s"]}),
        ("step.planned", {"step": "s", "reversible": True}),
        ("step.verified", {"step": "s"}),
    )
    setup.webhook.start()
    async with running(setup.sender(with_syslog=False)):
        setup.trail.write(("lease.expired", {"step": "s"}), ("step.rolled_back", {"step": "s"}))
        await until(lambda: len(setup.webhook.events) == 1, "the new outcome")
        await asyncio.sleep(0.1)
    (event,) = setup.webhook.events.values()
    assert event["activity_name"] == "Restore"
    assert event["status_detail"] == "its lease expired"
    assert event["policy"]["version"] == "sha256:v0"
    assert event["unmapped"]["bulkhead"]["finding_uids"] == ["det-old"]
    assert event["class_uid"] == 7001, "no facts for step s: not called a network step"


async def test_two_workers_on_one_state_dir_send_each_event_once(setup):
    """Workers sharing a state dir share the trail and the queues: one sends, the other
    stands by and takes over, from where the first left off, once the first stops."""
    setup.webhook.start()
    first, second = setup.sender(with_syslog=False), setup.sender(with_syslog=False)
    with capture_logs() as logged:
        leading = asyncio.ensure_future(first.run())
        standing_by = asyncio.ensure_future(second.run())
        try:
            setup.trail.contain_and_release()
            await until(lambda: len(setup.webhook.events) == 2, "both events")
            await until(lambda: "events.standing_by" in [e["event"] for e in logged], "a standby")
            await asyncio.sleep(0.3)  # time for a second copy, were one coming
            assert setup.webhook.deliveries == 2
            leading.cancel()  # the first worker stops
            with contextlib.suppress(asyncio.CancelledError):
                await leading
            again = {"step": "quarantine:eng-ws-03", "reapplied": True}
            setup.trail.write(("step.verified", again))
            await until(lambda: len(setup.webhook.events) == 3, "the new event")
            await asyncio.sleep(0.3)
        finally:
            for task in (leading, standing_by):
                task.cancel()
            await asyncio.gather(leading, standing_by, return_exceptions=True)
    assert "events.taking_over" in [e["event"] for e in logged]
    assert setup.webhook.deliveries == 3
    assert list((setup.root / "events" / "webhook").glob("*.json")) == []
