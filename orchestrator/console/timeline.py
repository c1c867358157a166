"""An incident's timeline, drawn to scale from its audit trail: finding → decision → plan
→ apply → verify, the approvals and the lease, so time-to-contain is seen.

Only the trail is read (the kinds workflows/ records: `finding.received`, `decision`,
`step.<state>`, `step.approval`, `lease.*`, `approval.timeout`, `release.requested`,
`step.release_requested`,
`incident.*`); a kind it does not know is left out, never an error. The axis runs from
the first entry to the last one, not to "now": the picture then changes only when the
trail does, so a live page is not re-sent every second, and a phase still running (a step
waiting for a person, a lease being held) is drawn open to the right edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from contracts.incident import AuditEntry
from orchestrator.responders import times

# What each step state starts, as the timeline names it; a state not here ends the step.
PHASES = {
    "planned": "plan",
    "awaiting_approval": "awaiting approval",
    "approved": "plan",
    "applying": "apply",
    "applied": "verify",
    "verified": "held (lease)",
    "rolling_back": "roll back",
}
# What the text alternative says when a step enters a state.
SAYS = {
    "planned": "planned; runs on its own",
    "awaiting_approval": "planned; waits for approval",
    "approved": "approved; plans its change",
    "applying": "applying",
    "applied": "applied; verifying",
    "verified": "verified; lease held",
    "rolling_back": "rolling back",
}
# Phases still running when the trail ends: drawn open to the right edge.
OPEN = frozenset({"awaiting_approval", "verified", "applied"})
STEP_MARKS = {
    "step.preview": "dry run on the target, for the approvers",
    "step.approval": "approved by {principal}",
    "step.denied": "denied by {principal}",
    "step.failed": "failed",
    "step.expired": "lease ended",
    "step.rolled_back": "rolled back",
    "approval.timeout": "approval deadline passed ({on_timeout})",
    "lease.extended": "lease extended by {principal}",
    "lease.expired": "lease expired",
    "guard.tripped": "guard tripped",
    "step.release_requested": "released on its own by {principal}",
    "step.unclaimed": "changed by a lost worker, not made again: see the escalation",
}
# Step states that end a step's running phase (drawn as a mark, not a bar).
ENDS = frozenset({"step.denied", "step.failed", "step.expired", "step.rolled_back"})
INCIDENT_MARKS = {
    "incident.opened": "opened",
    "finding.received": "finding",
    "decision": "decision: {verdict}",
    "release.requested": "release asked by {principal}",
    "incident.released": "released",
    "incident.escalated": "escalated",
}
MIN_SPAN_S = 0.001
MIN_WIDTH_PCT = 0.6  # an instant phase still shows


@dataclass(frozen=True)
class Bar:
    phase: str  # a PHASES value
    state: str  # the step state that began it (CSS class)
    start_s: float
    end_s: float
    open_ended: bool = False


@dataclass(frozen=True)
class Mark:
    text: str
    kind: str
    at_s: float


@dataclass
class Lane:
    name: str
    bars: list[Bar] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)


@dataclass(frozen=True)
class Moment:
    """One line of the text alternative: when, how long after the start, what."""

    at: datetime
    offset_s: float
    lane: str
    text: str


@dataclass
class Timeline:
    start: datetime
    span_s: float
    lanes: list[Lane]
    moments: list[Moment]
    contained_s: float | None  # first entry → the last step's first verification
    first_seq: int
    first_kind: str = ""

    def pct(self, seconds: float) -> float:
        return round(100.0 * min(max(seconds, 0.0), self.span_s) / self.span_s, 3)

    def width(self, bar: Bar) -> float:
        return max(self.pct(bar.end_s) - self.pct(bar.start_s), MIN_WIDTH_PCT)

    def clock(self, seconds: float) -> str:
        return utc_clock(self.start.timestamp() + seconds, fine=self.span_s < 60)


def _text(template: str, detail: dict[str, object]) -> str:
    names = {key: detail.get(key, "?") for key in ("principal", "verdict", "on_timeout")}
    return template.format(**names)


def utc_clock(epoch_s: float, *, fine: bool) -> str:
    moment = datetime.fromtimestamp(epoch_s, UTC)
    if fine:
        return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"
    return moment.strftime("%H:%M:%S UTC")


def duration(seconds: float) -> str:
    """A span as a responder reads it: 0.29 s, 4 m 12 s, 2 h 5 m."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} m"
    return f"{minutes} m {secs} s" if minutes else f"{secs} s"


def of(audit: Sequence[AuditEntry]) -> Timeline | None:
    """The timeline of a trail (oldest entry first, as IncidentView.audit holds it)."""
    timed = [(at, entry) for entry in audit if (at := times.parse(entry.at)) is not None]
    if not timed:
        return None
    timed.sort(key=lambda pair: (pair[0], pair[1].seq))
    drawing = _Drawing(timed[0][0])
    for at, entry in timed:
        drawing.add(at, entry)
    span_s = max((timed[-1][0] - drawing.start).total_seconds(), MIN_SPAN_S)
    drawing.finish(span_s)
    verified = drawing.verified_first
    return Timeline(
        drawing.start,
        span_s,
        [drawing.incident, *drawing.steps.values()],
        drawing.moments,
        max(verified.values()) if verified else None,
        timed[0][1].seq,
        timed[0][1].kind,
    )


class _Drawing:
    """Lanes, bars and marks as the trail is read, oldest entry first."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.incident = Lane("incident")
        self.steps: dict[str, Lane] = {}
        self.current: dict[str, tuple[str, float]] = {}  # step → (state, since)
        self.verified_first: dict[str, float] = {}
        self.moments: list[Moment] = []

    def add(self, at: datetime, entry: AuditEntry) -> None:
        offset = (at - self.start).total_seconds()
        step_id = entry.detail.get("step")
        if entry.kind in INCIDENT_MARKS:
            text = _text(INCIDENT_MARKS[entry.kind], entry.detail)
            if entry.kind == "decision" and not self.incident.bars:
                self.incident.bars.append(Bar("decide", "deciding", 0.0, offset))
            self.incident.marks.append(Mark(text, entry.kind, offset))
            self.moments.append(Moment(at, offset, "incident", text))
        elif isinstance(step_id, str):
            said = self._step(step_id, entry, offset)
            if said is not None:
                self.moments.append(Moment(at, offset, step_id, said))

    def _step(self, step_id: str, entry: AuditEntry, offset: float) -> str | None:
        lane = self.steps.setdefault(step_id, Lane(step_id))
        text: str | None = None
        if entry.kind.startswith("step.") and entry.kind[5:] in PHASES:
            text = self._enter(lane, entry, offset)
        if entry.kind in STEP_MARKS:
            text = _text(STEP_MARKS[entry.kind], entry.detail)
            lane.marks.append(Mark(text, entry.kind, offset))
            if entry.kind in ENDS and step_id in self.current:
                _close(lane, *self.current.pop(step_id), offset)
        return text

    def _enter(self, lane: Lane, entry: AuditEntry, offset: float) -> str:
        """The step enters a state that begins a phase; the phase before it ends."""
        state = entry.kind[5:]
        if state == "planned" and entry.detail.get("awaiting_approval"):
            state = "awaiting_approval"
        if lane.name in self.current:
            _close(lane, *self.current[lane.name], offset)
        self.current[lane.name] = (state, offset)
        text = SAYS[state]
        if state == "verified":
            self.verified_first.setdefault(lane.name, offset)
            if until := times.parse(str(entry.detail.get("lease_expires_at"))):
                text += f" until {until:%Y-%m-%d %H:%M:%S} UTC"
        return text

    def finish(self, span_s: float) -> None:
        """Phases the trail has not ended yet run to the right edge, marked open."""
        for step_id, (state, began) in self.current.items():
            lane = self.steps[step_id]
            if state in OPEN:
                lane.bars.append(Bar(PHASES[state], state, began, span_s, open_ended=True))
            else:
                _close(lane, state, began, span_s)


def _close(lane: Lane, state: str, began: float, now_s: float) -> None:
    if state in PHASES:
        lane.bars.append(Bar(PHASES[state], state, began, now_s))
