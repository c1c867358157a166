"""Warnings ahead of time: an approval deadline near, a lease about to end.

When an approval is needed (its deadline known) or a step is contained or its lease
extended (its lease's end known), a reminder is set for a while before that moment. When
it is due, the incident is asked again: the reminder goes out only if the step still
waits for approval, or still holds with that same lease end (an extended lease sets a
new reminder instead). Reminders live in memory: after a worker restart, the ones set
before it are not sent (the pages they warn ahead of still are).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator.notify.notices import Kind, Notice

LEASE_WARNING = timedelta(minutes=10)  # the "10 minutes before"
APPROVAL_WARNING = timedelta(minutes=5)
MAX_REMINDERS = 100_000


@dataclass(order=True, frozen=True)
class Reminder:
    due: datetime
    kind: Kind = field(compare=False)
    notice: Notice = field(compare=False)
    moment: str = field(compare=False)  # the deadline or lease end it warns of (ISO 8601)


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
    def __init__(self) -> None:
        self._heap: list[Reminder] = []

    def add(self, reminder: Reminder) -> None:
        if len(self._heap) < MAX_REMINDERS:
            heapq.heappush(self._heap, reminder)

    def due(self, now: datetime) -> list[Reminder]:
        ready: list[Reminder] = []
        while self._heap and self._heap[0].due <= now:
            ready.append(heapq.heappop(self._heap))
        return ready

    def __len__(self) -> int:
        return len(self._heap)
