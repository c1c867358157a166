"""The worker's notification task: trail → notices → policy → storm window → queue → Apprise.

Like orchestrator/events/sender.py, whose trail-reading helpers and outbox it uses: the
cursor moves only after what was read is queued on disk (or held in a digest window),
each channel drains its own queue with backoff, and nothing runs in an activity or a
workflow. Each delivery attempt is counted in `bulkhead_notifications_total{channel,
outcome}` and appended to `<state_dir>/notifications.jsonl`: the incident's hash-chained
trail is written by its workflow alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from contracts.incident import AuditEntry
from orchestrator.events.follow import advance, keep_reading, start_cursor
from orchestrator.events.leader import LEADER_LOCK, leading
from orchestrator.events.outbox import Cursor, Outbox
from orchestrator.notify.automation import POLL_S as CITY_POLL_S
from orchestrator.notify.automation import AutomationWatch, CityReader
from orchestrator.notify.channels import Channel
from orchestrator.notify.lookup import FactLookup
from orchestrator.notify.messages import digest_message, message_of
from orchestrator.notify.notices import Kind, Notice, Reader
from orchestrator.notify.reminders import Reminder, Reminders, reminder_for, still_true
from orchestrator.notify.window import Digest, Window
from orchestrator.policy.base import PolicyEngine

log = structlog.get_logger(__name__)

OUTCOMES = ("delivered", "failed")
POLL_S = 0.2
RETRY_MIN_S = 0.5
RETRY_MAX_S = 60.0
REMIND_RETRY = timedelta(seconds=30)  # a reminder whose incident could not be asked
REMINDER_WORDS = {Kind.APPROVAL_DEADLINE_NEAR: "approve by ", Kind.LEASE_EXPIRING: "lease ends "}


def message_keys(message: dict[str, Any]) -> tuple[str, tuple[int, str, int]]:
    return str(message["id"]), (int(message["time"]), str(message["incident"]), int(message["seq"]))


class Notifier:
    def __init__(
        self,
        *,
        audit_path: Path,
        state_dir: Path,
        channels: Sequence[Channel],
        engine: PolicyEngine,
        lookup: FactLookup,
        public_url: str,
        registry: CollectorRegistry | None = None,
        windows: dict[str, Window] | None = None,
        city: CityReader | None = None,
    ) -> None:
        self.audit_path = audit_path
        self.channels = list(channels)
        self.outbox = Outbox(
            state_dir / "notifications", [c.name for c in self.channels], keys=message_keys
        )
        self.log_path = state_dir / "notifications.jsonl"
        self._engine = engine
        self._lookup = lookup
        self._public_url = public_url
        self._reader = Reader()
        self.reminders = Reminders(state_dir / "reminders")
        self.automation = AutomationWatch(city) if city is not None else None
        self.windows = windows or {c.name: Window() for c in self.channels}
        self._wake = {c.name: asyncio.Event() for c in self.channels}
        self._cursor: Cursor | None = None
        self.counted = Counter(
            "bulkhead_notifications",
            "Notification delivery attempts by channel (scheme://host) and outcome "
            "(delivered; failed: the message stays queued and is tried again).",
            ["channel", "outcome"],
            registry=registry,
        )
        for channel in self.channels:
            for outcome in OUTCOMES:
                self.counted.labels(channel=channel.name, outcome=outcome)

    def prepare(self) -> None:
        """A first start begins at the trail's end: no pages for last month's incidents."""
        self.outbox.load()
        if kept := self.reminders.load():
            log.info("notify.reminders_loaded", reminders=kept)
        self._cursor = start_cursor(self.outbox, self.audit_path)

    async def run(self) -> None:
        """Only one worker of a state dir notifies at a time (events/leader.py): this one
        once it leads, from the queues, cursor and reminders as the last one left them."""
        async with leading(self.outbox.root / LEADER_LOCK, "notify"):
            self.prepare()
            await self._notify()

    async def _notify(self) -> None:
        tasks = [asyncio.ensure_future(self._follow()), asyncio.ensure_future(self._digests())]
        if self.automation is not None:
            tasks.append(asyncio.ensure_future(self._watch_automation(self.automation)))
        tasks += [asyncio.ensure_future(self._deliver(c)) for c in self.channels]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- reading and routing --------------------------------------------------------------

    async def _follow(self) -> None:
        await keep_reading(self.read_once, POLL_S, event="notify.read_failed", path=self.audit_path)

    async def read_once(self) -> bool:
        assert self._cursor is not None  # noqa: S101 - prepare() placed it
        before = self._cursor
        self._cursor = await advance(self.audit_path, self.outbox, before, self._notice_of)
        return self._cursor != before

    async def _notice_of(self, entry: AuditEntry) -> None:
        notice = self._reader.read(entry)
        if notice is not None:
            await self.route(notice)

    async def route(self, notice: Notice) -> None:
        facts = await self._lookup.facts(notice.incident_id, notice.step)
        notice = Notice(**{**notice.__dict__, "facts": facts})
        if notice.kind in (Kind.APPROVAL_NEEDED, Kind.STEP_HOLDS):
            approval = notice.kind == Kind.APPROVAL_NEEDED
            moment = facts.get("deadline" if approval else "lease_expires_at")
            reminder = reminder_for(notice, moment, datetime.now(UTC))
            if reminder is not None:
                self.reminders.add(reminder)
        if notice.kind == Kind.STEP_HOLDS:
            return  # news to nobody; only its reminder may be
        await self.tell(notice, facts)

    async def remind(self, now: datetime) -> None:
        """The reminders due, each sent only if the incident still calls for it (an
        extended lease set a reminder of its own when its extension was read)."""
        for reminder in self.reminders.due(now):
            try:
                await self._remind(reminder, now)
            except Exception:  # the others still go; this one is tried again
                log.warning("notify.remind_failed", incident=reminder.notice.incident_id,
                            kind=reminder.kind.value, exc_info=True)  # fmt: skip
                self.reminders.later(reminder, now + REMIND_RETRY)
                continue
            self.reminders.done(reminder)

    async def _remind(self, reminder: Reminder, now: datetime) -> None:
        if reminder.passed(now):
            return  # its deadline or lease end came while no worker ran: too late to warn
        earlier = reminder.notice
        facts = await self._lookup.facts(earlier.incident_id, earlier.step)
        if "state" not in facts:
            # The lookup answers {} when the incident could not be asked (logged there):
            # not "no longer true". Tried again until the moment passes.
            raise LookupError(f"{earlier.incident_id}: the step's state could not be read")
        if not still_true(reminder, facts):
            return
        notice = Notice(reminder.kind, earlier.incident_id, earlier.seq, now.isoformat(),
                        earlier.step, REMINDER_WORDS[reminder.kind] + reminder.moment,
                        facts)  # fmt: skip
        await self.tell(notice, facts)

    async def tell(self, notice: Notice, facts: dict[str, Any]) -> None:
        """Route one notice by the policy and offer it to each channel's window."""
        event = {"kind": notice.kind.value, "incident_id": notice.incident_id,
                 "step": notice.step, **facts}  # fmt: skip
        tags = await asyncio.to_thread(self._engine.notify, event)
        if tags is None:  # the policy could not answer: tell everyone
            log.error("notify.policy_unanswered", kind=notice.kind.value)
            targets = self.channels
        else:
            targets = [c for c in self.channels if c.wants(tags)]
        moment = time.monotonic()
        for channel in targets:
            if self.windows[channel.name].offer(notice, moment):
                title, body = message_of(notice, self._public_url)
                await self._queue(channel, notice.kind.value, [notice], title, body)

    # Every loop outlives any one failure (logged): the notifier is a part of the worker,
    # and a part that ends stops the worker, which a failing channel must never do.

    async def _watch_automation(self, watch: AutomationWatch) -> None:
        while True:
            try:
                notice = await watch.check()
                if notice is not None:
                    await self.tell(notice, {})
            except Exception:
                log.exception("notify.automation_failed")
            await asyncio.sleep(CITY_POLL_S)

    async def _digests(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                await self.flush(time.monotonic())
            except Exception:
                log.exception("notify.digest_failed")
            try:
                await self.remind(datetime.now(UTC))
            except Exception:
                log.exception("notify.remind_failed")

    async def flush(self, now: float) -> None:
        for channel in self.channels:
            digest: Digest | None = self.windows[channel.name].due(now)
            if digest is not None:
                title, body = digest_message(digest, self._public_url)
                await self._queue(channel, "digest", list(digest.notices), title, body)

    async def _queue(
        self, channel: Channel, kind: str, notices: list[Notice], title: str, body: str
    ) -> None:
        first = notices[0]
        ident = hashlib.sha256(
            f"{channel.name}\x00{kind}\x00{first.incident_id}\x00{first.seq}".encode()
        ).hexdigest()[:32]
        message = {
            "id": ident,
            "time": int(time.time() * 1000),
            "incident": first.incident_id,
            "seq": first.seq,
            "kind": kind,
            "incidents": sorted({n.incident_id for n in notices})[:50],
            "title": title,
            "body": body,
        }
        await asyncio.to_thread(self.outbox.enqueue, message, [channel.name])
        self._wake[channel.name].set()

    # --- delivering -----------------------------------------------------------------------

    async def _deliver(self, channel: Channel) -> None:
        delay = RETRY_MIN_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake[channel.name].wait(), 1.0)
            self._wake[channel.name].clear()
            try:
                drained = await self.drain(channel)
            except Exception:
                log.exception("notify.deliver_failed", channel=channel.name)
                drained = False
            if drained:
                delay = RETRY_MIN_S
                continue
            await asyncio.sleep(delay)  # the channel failed: its messages wait, no one else's
            delay = min(delay * 2, RETRY_MAX_S)
            self._wake[channel.name].set()

    async def drain(self, channel: Channel) -> bool:
        """Send what is queued, in order; False at the first failure (tried again later)."""
        for queued in self.outbox.queued(channel.name):
            message = json.loads(await asyncio.to_thread(queued.path.read_bytes))
            try:
                sent = await channel.send(message["title"], message["body"])
            except Exception:  # a plugin that raises is a failed delivery (logged)
                log.exception("notify.send_raised", channel=channel.name)
                sent = False
            outcome = "delivered" if sent else "failed"
            self.counted.labels(channel=channel.name, outcome=outcome).inc()
            await asyncio.to_thread(self._log, channel, message, outcome)
            if not sent:
                log.warning("notify.failed", channel=channel.name, message=message["id"])
                return False
            self.outbox.delivered(channel.name, queued.event_id)
        return True

    def _log(self, channel: Channel, message: dict[str, Any], outcome: str) -> None:
        line = {
            "at": datetime.now(UTC).isoformat(),
            "channel": channel.name,
            "outcome": outcome,
            "message": message["id"],
            "kind": message["kind"],
            "incidents": message["incidents"],
        }
        with self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, separators=(",", ":")) + "\n")
