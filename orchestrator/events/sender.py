"""The background part of the worker that turns the audit trail into events and sends them.

Two kinds of task on the worker's event loop, never in the export activity:
- the reader follows audit.jsonl from its cursor, asks the trail (trail.py) which entries
  are step outcomes, completes each from the incident (lookup.py), builds its OCSF event
  (ocsf.py) and puts it in every sink's queue (outbox.py), then moves the cursor;
- one deliverer per sink drains its queue in event order, backing off while the sink is
  down. An event a sink refused waits on its own backoff and holds no other up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from contracts.incident import AuditEntry
from orchestrator.events.follow import advance, entry_of, keep_reading, start_cursor
from orchestrator.events.leader import LEADER_LOCK, leading
from orchestrator.events.lookup import LookupUnavailableError, StepFacts, StepLookup
from orchestrator.events.ocsf import remediation_event
from orchestrator.events.outbox import Cursor, Outbox, Queued
from orchestrator.events.sinks import EventRejectedError, Sink, SinkDownError, Stored
from orchestrator.events.trail import StepOutcome, Trail, event_id

log = structlog.get_logger(__name__)

OUTCOMES = ("delivered", "failed", "rejected")
IDLE_S = 1.0  # a deliverer with nothing new looks again this often (refused events wait)
REJECTED_MAX_S = 3600.0


@dataclass(frozen=True)
class Pacing:
    poll_s: float = 0.2  # how often the trail is looked at when nothing is new
    retry_min_s: float = 0.5  # first wait after a sink or the lookup failed; doubles
    retry_max_s: float = 30.0
    # How long one outcome waits for its incident to answer before its event goes out with
    # what the trail knows (no adapter, action or target): a SIEM told late and partly
    # beats one never told, and one incident whose query keeps failing holds no other up.
    lookup_patience_s: float = 600.0
    # How often a worker whose neighbour on the same state dir sends tries to take over.
    standby_s: float = 1.0


class EventMetrics:
    def __init__(self, registry: CollectorRegistry | None, sinks: Sequence[str]) -> None:
        self.events = Counter(
            "bulkhead_events",
            "OCSF Remediation events by sink and outcome of each attempt (delivered, failed: "
            "the sink was down and the event stays queued, rejected: the sink refused it).",
            ["sink", "outcome"],
            registry=registry,
        )
        self.queued = Gauge(
            "bulkhead_events_queued",
            "OCSF Remediation events waiting for a sink (a sink that is down keeps them).",
            ["sink"],
            registry=registry,
        )
        for sink in sinks:  # every series exists from the start, at 0
            for outcome in OUTCOMES:
                self.events.labels(sink=sink, outcome=outcome)
            self.queued.labels(sink=sink)


class EventSender:
    def __init__(
        self,
        *,
        audit_path: Path,
        outbox: Outbox,
        sinks: Sequence[Sink],
        lookup: StepLookup,
        id_key: bytes,
        registry: CollectorRegistry | None = None,
        pacing: Pacing | None = None,
    ) -> None:
        self.audit_path = audit_path
        self.outbox = outbox
        self.sinks = list(sinks)
        self._lookup = lookup
        self._id_key = id_key
        self._pacing = pacing or Pacing()
        self.metrics = EventMetrics(registry, [s.name for s in self.sinks])
        self._trail = Trail()
        self._wake = {sink.name: asyncio.Event() for sink in self.sinks}
        self._cursor: Cursor | None = None

    def prepare(self) -> None:
        """Index the queues and place the cursor; call before the worker starts. A first
        start begins at the trail's current end: events report what happens from when they
        were turned on, not a deployment's whole history again."""
        self.outbox.load()
        self._cursor = start_cursor(self.outbox, self.audit_path)
        for sink in self.sinks:
            self.metrics.queued.labels(sink=sink.name).set(self.outbox.depth(sink.name))

    async def run(self) -> None:
        """Until cancelled (the worker stopping); what is queued waits on disk. Only one
        worker of a state dir sends at a time (leader.py): this one once it leads, from
        the queues and the cursor as the last one left them."""
        async with leading(self.outbox.root / LEADER_LOCK, "events", self._pacing.standby_s):
            self.prepare()
            await asyncio.to_thread(self._recall)
            await self._send()

    async def _send(self) -> None:
        tasks = [asyncio.ensure_future(self._follow())]
        tasks += [asyncio.ensure_future(self._deliver(sink)) for sink in self.sinks]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sink in self.sinks:
                with contextlib.suppress(Exception):
                    await sink.close()

    # --- reading the trail --------------------------------------------------------------

    def _recall(self) -> None:
        """The facts of what was read before a restart (decisions, findings), no events."""
        assert self._cursor is not None  # noqa: S101 - run() prepared it
        if self._cursor.offset == 0 or not self.audit_path.is_file():
            return
        left = self._cursor.offset
        with self.audit_path.open("rb") as handle:
            for line in handle:  # line by line: a trail can be larger than memory
                left -= len(line)
                if left < 0:
                    break
                entry = entry_of(line) if line.strip() else None
                if entry is not None:
                    self._trail.read(entry)

    async def _follow(self) -> None:
        poll_s = self._pacing.poll_s
        await keep_reading(
            self._read_once, poll_s, event="events.read_failed", path=self.audit_path
        )

    async def _read_once(self) -> bool:
        assert self._cursor is not None  # noqa: S101 - run() prepared it
        before = self._cursor
        self._cursor = await advance(self.audit_path, self.outbox, before, self._outcome_of)
        return self._cursor != before

    async def _outcome_of(self, entry: AuditEntry) -> None:
        outcome = self._trail.read(entry)
        if outcome is not None:
            await self._emit(outcome)

    async def _emit(self, outcome: StepOutcome) -> None:
        """Complete, build and queue one event. While the incident cannot be asked, the
        reader waits (holding the cursor: an event without its target would mislead),
        up to `lookup_patience_s`."""
        facts = await self._facts(outcome)
        event = remediation_event(
            outcome, facts, event_id(self._id_key, outcome.incident_id, outcome.seq)
        )
        await asyncio.to_thread(self.outbox.enqueue, event)
        log.info(
            "events.queued",
            incident_id=outcome.incident_id,
            step=outcome.step_id,
            outcome=outcome.outcome.value,
            event_id=event["metadata"]["uid"],
        )
        for sink in self.sinks:
            self.metrics.queued.labels(sink=sink.name).set(self.outbox.depth(sink.name))
            self._wake[sink.name].set()

    async def _facts(self, outcome: StepOutcome) -> StepFacts | None:
        delay = self._pacing.retry_min_s
        give_up = time.monotonic() + self._pacing.lookup_patience_s
        while True:
            try:
                return await self._lookup.facts(outcome.incident_id, outcome.step_id)
            except Exception as exc:  # noqa: BLE001 - unavailable or not: asked again
                error = str(exc) if isinstance(exc, LookupUnavailableError) else repr(exc)
                log.warning("events.lookup_failed", incident_id=outcome.incident_id, error=error)
            if time.monotonic() >= give_up:
                log.error("events.lookup_gave_up", incident_id=outcome.incident_id)
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._pacing.retry_max_s)

    # --- delivering ---------------------------------------------------------------------

    async def _deliver(self, sink: Sink) -> None:
        delay = self._pacing.retry_min_s
        refused: dict[str, tuple[float, float]] = {}  # event id: (not before, its backoff)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake[sink.name].wait(), IDLE_S)
            self._wake[sink.name].clear()
            try:
                down = await self._drain(sink, refused)
            except Exception:  # the deliverer must outlive any one failure (logged)
                log.exception("events.deliver_failed", sink=sink.name)
                down = True
            self.metrics.queued.labels(sink=sink.name).set(self.outbox.depth(sink.name))
            if down:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._pacing.retry_max_s)
                self._wake[sink.name].set()
            else:
                delay = self._pacing.retry_min_s

    async def _drain(self, sink: Sink, refused: dict[str, tuple[float, float]]) -> bool:
        """Send what is due, in order; True when the sink is down (try again later)."""
        now = time.monotonic()
        due = [
            q for q in self.outbox.queued(sink.name) if refused.get(q.event_id, (0, 0))[0] <= now
        ]
        counted = self.metrics.events
        for start in range(0, len(due), sink.batch):
            batch = due[start : start + sink.batch]
            stored = await asyncio.to_thread(_stored, batch)
            try:
                await sink.send(stored)
            except SinkDownError as exc:
                counted.labels(sink=sink.name, outcome="failed").inc(len(batch))
                log.warning(
                    "events.sink_down", sink=sink.name, queued=len(due) - start, error=str(exc)
                )
                return True
            except EventRejectedError as exc:
                counted.labels(sink=sink.name, outcome="rejected").inc(len(batch))
                for queued in batch:
                    backoff = min(
                        refused.get(queued.event_id, (0, self._pacing.retry_max_s / 2))[1] * 2,
                        REJECTED_MAX_S,
                    )
                    refused[queued.event_id] = (time.monotonic() + backoff, backoff)
                    log.warning(
                        "events.rejected", sink=sink.name, event_id=queued.event_id, error=str(exc)
                    )
                continue
            for queued in batch:
                self.outbox.delivered(sink.name, queued.event_id)
                refused.pop(queued.event_id, None)
            counted.labels(sink=sink.name, outcome="delivered").inc(len(batch))
        return False


def _stored(batch: list[Queued]) -> list[Stored]:
    return [Stored(q.event_id, q.path.read_bytes()) for q in batch]
