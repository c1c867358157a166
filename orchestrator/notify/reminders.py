"""Warnings ahead of time: an approval deadline near, a lease about to end.

When an approval is needed (its deadline known) or a step is contained or its lease
extended (its lease's end known), a reminder is set for a while before that moment. When
it is due, the incident is asked again: the reminder goes out only if the step still
waits for approval, or still holds with that same lease end (an extended lease sets a
new reminder instead). Each reminder is kept on disk from when it is set (before the
trail's cursor moves past the entry that set it) until it has been handled, so a worker
restart sends the ones set before it: `<state_dir>/reminders/<id>.json`. A crash between
queueing and forgetting one sends it again, as the outbox repeats a message; one the storm
window folded into a digest not yet sent is lost with that digest (NOTIFICATIONS.md).
"""

from __future__ import annotations

import hashlib
import heapq
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from orchestrator.events.outbox import write_durably
from orchestrator.notify.notices import Kind, Notice

log = structlog.get_logger(__name__)

LEASE_WARNING = timedelta(minutes=10)  # the "10 minutes before"
APPROVAL_WARNING = timedelta(minutes=5)
MAX_REMINDERS = 100_000


@dataclass(order=True, frozen=True)
class Reminder:
    due: datetime
    kind: Kind = field(compare=False)
    notice: Notice = field(compare=False)
    moment: str = field(compare=False)  # the deadline or lease end it warns of (ISO 8601)

    @property
    def ident(self) -> str:
        """The same for the same warning, however often the entry that set it is read."""
        notice = self.notice
        text = f"{self.kind.value}\x00{notice.incident_id}\x00{notice.step}\x00{self.moment}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def document(self) -> dict[str, Any]:
        notice = self.notice
        return {
            "due": self.due.isoformat(),
            "kind": self.kind.value,
            "moment": self.moment,
            "notice": {
                "kind": notice.kind.value,
                "incident_id": notice.incident_id,
                "seq": notice.seq,
                "at": notice.at,
                "step": notice.step,
                "reason": notice.reason,
                "facts": notice.facts,
            },
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Reminder:
        notice: dict[str, Any] = document["notice"]
        return cls(
            due=datetime.fromisoformat(document["due"]),
            kind=Kind(document["kind"]),
            moment=str(document["moment"]),
            notice=Notice(
                Kind(notice["kind"]),
                str(notice["incident_id"]),
                int(notice["seq"]),
                str(notice["at"]),
                notice["step"],
                str(notice["reason"]),
                dict(notice["facts"]),
            ),
        )

    def passed(self, now: datetime) -> bool:
        """Whether the moment it warns of is already past (a worker that was down): the
        page for what happened then says it; a warning ahead of it would not."""
        try:
            return datetime.fromisoformat(self.moment) <= now
        except (ValueError, TypeError):  # not a time, or one without its zone
            return True


def reminder_for(notice: Notice, moment: str | None, now: datetime) -> Reminder | None:
    """The reminder a notice (approval needed) or a contained step calls for, if the
    moment is still far enough ahead for a warning to say something."""
    if not moment:
        return None
    try:
        at = datetime.fromisoformat(moment)
    except ValueError:
        return None
    if notice.kind == Kind.APPROVAL_NEEDED:
        kind, lead = Kind.APPROVAL_DEADLINE_NEAR, min(APPROVAL_WARNING, (at - now) / 2)
    else:
        kind, lead = Kind.LEASE_EXPIRING, LEASE_WARNING
    due = at - lead
    if due <= now:
        return None  # too late to warn ahead
    return Reminder(due=due, kind=kind, notice=notice, moment=moment)


def still_true(reminder: Reminder, facts: dict[str, object]) -> bool:
    """Whether the incident, asked when the reminder is due, still calls for it."""
    if reminder.kind == Kind.APPROVAL_DEADLINE_NEAR:
        return facts.get("state") == "awaiting_approval"
    return facts.get("state") == "verified" and facts.get("lease_expires_at") == reminder.moment


class Reminders:
    """Due-ordered; each one also a file in `folder` (when given) until `done`."""

    def __init__(self, folder: Path | None = None) -> None:
        self._heap: list[Reminder] = []
        self._folder = folder
        self._held: set[str] = set()  # set and not yet done (in the heap or being handled)

    def load(self) -> int:
        """The reminders a previous run (or the worker this one takes over from) set and
        did not handle; how many."""
        self._heap, self._held = [], set()
        if self._folder is None or not self._folder.is_dir():
            return 0
        for path in sorted(self._folder.glob("*.json")):
            try:
                reminder = Reminder.from_document(json.loads(path.read_bytes()))
            except FileNotFoundError:
                continue  # handled meanwhile (the worker that led until now)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # Set aside, not retried for ever (half-written files never get here).
                log.warning("notify.reminder_unreadable", path=str(path), error=str(exc))
                path.rename(path.with_suffix(".unreadable"))
                continue
            if reminder.ident not in self._held:
                self._held.add(reminder.ident)
                heapq.heappush(self._heap, reminder)
        return len(self._heap)

    def add(self, reminder: Reminder) -> None:
        if reminder.ident in self._held or len(self._heap) >= MAX_REMINDERS:
            return
        if self._folder is not None:
            body = json.dumps(reminder.document(), sort_keys=True, default=str).encode()
            write_durably(self._folder / f"{reminder.ident}.json", body)
        self._held.add(reminder.ident)
        heapq.heappush(self._heap, reminder)

    def due(self, now: datetime) -> list[Reminder]:
        """The reminders due, out of the queue; each stays on disk until `done` (or is
        put back with `later`)."""
        ready: list[Reminder] = []
        while self._heap and self._heap[0].due <= now:
            ready.append(heapq.heappop(self._heap))
        return ready

    def later(self, reminder: Reminder, due: datetime) -> None:
        """Handling failed (the incident could not be asked): try again at `due`."""
        heapq.heappush(self._heap, Reminder(due, reminder.kind, reminder.notice, reminder.moment))

    def done(self, reminder: Reminder) -> None:
        self._held.discard(reminder.ident)
        if self._folder is not None:
            (self._folder / f"{reminder.ident}.json").unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._heap)
