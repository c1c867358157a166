"""Storm safety: what one channel is sent, per window.

- At most one message per (incident, event kind) per window: a repeat is dropped.
- At most `burst` messages go out on their own per window; the rest wait for the
  window's end and go out as one digest ("37 incidents in the last 10 s: 4 need
  approval, ...").
- While a storm lasts (a window ended with a digest), the next window is twice as long,
  up to `max_window_s`, and sends nothing on its own: all of it goes to its digest. A
  window's worth of quiet brings back `window_s` and `burst`. So a storm of any size
  costs a channel `burst` messages and then one digest per doubling window: 1,000
  findings over 100 s are 3 messages and 4 digests, not 1,000.

Time is passed in (monotonic seconds): the tests drive it, the notifier reads the clock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from orchestrator.notify.notices import Kind, Notice

WINDOW_S = 10.0
BURST = 3
MAX_WINDOW_S = 300.0

# How a digest names each kind, by count.
DIGEST_WORDS = {
    Kind.INCIDENT_OPENED: "opened",
    Kind.APPROVAL_NEEDED: "need approval",
    Kind.APPROVAL_ESCALATED: "escalated at an approval deadline",
    Kind.STEP_FAILED: "had a step fail",
    Kind.STEP_ESCALATED: "had a step escalated",
    Kind.GUARD_ROLLBACK: "rolled back by the guard",
    Kind.LEASE_REVERTED: "reverted at a lease's end",
    Kind.RELEASED: "released",
    Kind.DECISION_ESCALATED: "escalated by the policy",
    Kind.APPROVAL_DEADLINE_NEAR: "near an approval deadline",
    Kind.LEASE_EXPIRING: "with a lease ending soon",
    Kind.STEP_HOLDS: "holding a step",
    Kind.AUTOMATION_PAUSED: "automation paused",
    Kind.AUTOMATION_RESUMED: "automation resumed",
}


@dataclass(frozen=True)
class Digest:
    span_s: float
    notices: tuple[Notice, ...]

    @property
    def incidents(self) -> int:
        return len({n.incident_id for n in self.notices})

    def counts(self) -> dict[Kind, int]:
        """Incidents per kind."""
        return dict(Counter(kind for _, kind in {(n.incident_id, n.kind) for n in self.notices}))

    def text(self) -> str:
        parts = [
            f"{count} {DIGEST_WORDS[kind]}"
            for kind, count in sorted(self.counts().items(), key=lambda kc: -kc[1])
        ]
        noun = "incident" if self.incidents == 1 else "incidents"
        return f"{self.incidents} {noun} in the last {self.span_s:g} s: " + ", ".join(parts)


@dataclass
class _State:
    start: float
    length: float
    allowance: int  # messages on their own in this window: none while a storm lasts
    sent: int = 0
    held: list[Notice] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)


class Window:
    """One channel's window."""

    def __init__(
        self, window_s: float = WINDOW_S, burst: int = BURST, max_window_s: float = MAX_WINDOW_S
    ) -> None:
        self.window_s = window_s
        self.burst = burst
        self.max_window_s = max_window_s
        self._state: _State | None = None
        self.dropped = 0  # repeats of an (incident, kind) within a window

    def offer(self, notice: Notice, now: float) -> bool:
        """True: send it now, on its own. False: dropped as a repeat, or held for the
        digest (`due`)."""
        state = self._current(now)
        if notice.key in state.seen:
            self.dropped += 1
            return False
        state.seen.add(notice.key)
        if state.sent < state.allowance and not state.held:
            state.sent += 1
            return True
        state.held.append(notice)
        return False

    def due(self, now: float) -> Digest | None:
        """The digest of a window that has ended, if it held anything."""
        state = self._state
        if state is None or now < state.start + state.length:
            return None
        digest = Digest(span_s=state.length, notices=tuple(state.held)) if state.held else None
        self._next(now, stormy=digest is not None or state.sent >= self.burst)
        return digest

    def next_due(self) -> float | None:
        state = self._state
        return None if state is None or not state.held else state.start + state.length

    def _current(self, now: float) -> _State:
        state = self._state
        if state is None:
            state = self._state = _State(start=now, length=self.window_s, allowance=self.burst)
        elif now >= state.start + state.length and not state.held:
            self._next(now, stormy=state.sent >= self.burst)
            state = self._state
            assert state is not None  # noqa: S101 - _next set it
        return state

    def _next(self, now: float, *, stormy: bool) -> None:
        previous = self._state
        calm = previous is None or now >= previous.start + 2 * previous.length
        if stormy and previous is not None and not calm:
            self._state = _State(now, min(previous.length * 2, self.max_window_s), allowance=0)
        else:
            self._state = _State(now, self.window_s, allowance=self.burst)
