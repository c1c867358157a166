"""Step outcomes read from the sealed audit trail, with what the trail knows about them.

The trail says when a step was verified (`step.verified`), undone (`step.rolled_back`),
failed (`step.failed`) or handed to a person (`approval.timeout` with `on_timeout:
escalate`; `guard.unavailable` after a step; `guard.tripped` on a step that cannot be
undone; `step.escalated`, should the workflow record that state). The same incident's
earlier entries say which decision planned the step (its policy version) and which
findings the incident held then. Neither says the step's adapter, action or target:
orchestrator/events/lookup.py asks the incident for those.

The workflow records each of these once per outcome; a failure is followed by an
`incident.escalated` naming the step, which is the same outcome and is not read again.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.incident import AuditEntry, StepState

# Finding uids an event carries (the rest are counted): an event stays well inside the
# 8 KiB message size syslog receivers (rsyslog) accept by default.
MAX_FINDING_UIDS = 25
# Incidents whose facts are remembered; the least recently touched are forgotten first (an
# event about one of them then takes its facts from the incident itself, lookup.py).
MAX_INCIDENTS = 10_000
# Names ids in their own space: the same audit entry always yields the same event id.
EVENT_ID_NAMESPACE = uuid.UUID("5d0b8c1e-7f0a-4c55-9a43-1d1b6f3e9a19")
FINDING_KINDS = frozenset({"finding.received", "finding.updated", "finding.closed"})
STATES = frozenset(state.value for state in StepState)
# Not a state of contracts/ yet; read if the workflow ever records it (issue #19 item 5).
ESCALATED_STATE = "escalated"


class Outcome(StrEnum):
    CONTAINED = "contained"  # applied and verified on the target
    REVERTED = "reverted"  # undone, and the undo verified
    FAILED = "failed"
    ESCALATED = "escalated"  # left to a person


@dataclass(frozen=True)
class Decided:
    """The decision that planned a step, and the findings it answered."""

    policy_version: str | None
    decision_id: str | None
    finding_uids: tuple[str, ...]
    findings_total: int


@dataclass(frozen=True)
class StepOutcome:
    incident_id: str
    seq: int  # of the audit entry that records the outcome
    at: str  # ISO 8601, workflow time
    step_id: str
    outcome: Outcome
    reason: str
    # A failure while undoing the step: the remediation that failed was the restore.
    undoing: bool = False
    decided: Decided | None = None


def event_id(key: bytes, incident_id: str, seq: int) -> str:
    """The event's stable id: from the audit entry (incident, seq), keyed with the audit
    key. Every retry, restart and worker of one trail derives the same id, and another
    deployment's incident with the same name never collides with it."""
    digest = hmac.new(key, f"ocsf-remediation\x00{incident_id}\x00{seq}".encode(), hashlib.sha256)
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, digest.hexdigest()))


@dataclass
class _Step:
    planned_by: Decided | None = None
    reversible: bool = True
    state: str | None = None
    cause: tuple[int, str] | None = None  # why it may be undone next, by audit seq
    escalated: bool = False  # an escalation was read since the last transition


@dataclass
class _Incident:
    finding_uids: list[str] = field(default_factory=list)
    findings_total: int = 0
    decision: Decided | None = None
    steps: dict[str, _Step] = field(default_factory=dict)
    released: tuple[int, str] | None = None

    def step(self, step_id: str) -> _Step:
        return self.steps.setdefault(step_id, _Step())

    def finding(self, uid: str) -> None:
        if uid in self.finding_uids:
            return
        self.findings_total += 1
        if len(self.finding_uids) < MAX_FINDING_UIDS:
            self.finding_uids.append(uid)


class Trail:
    """Reads entries in trail order; `read` says which step outcome an entry is, if any."""

    def __init__(self, max_incidents: int = MAX_INCIDENTS) -> None:
        self._incidents: OrderedDict[str, _Incident] = OrderedDict()
        self._max = max_incidents

    def read(self, entry: AuditEntry) -> StepOutcome | None:
        incident = self._incident(entry.incident_id)
        detail = entry.detail
        kind = entry.kind
        step_id = detail.get("step")
        if kind in FINDING_KINDS and isinstance(detail.get("uid"), str):
            incident.finding(detail["uid"])
        elif kind == "decision":
            incident.decision = Decided(
                policy_version=_text(detail.get("policy_version")),
                decision_id=_text(detail.get("decision_id")),
                finding_uids=tuple(incident.finding_uids),
                findings_total=incident.findings_total,
            )
        elif kind == "release.requested":
            who = detail.get("principal", "a responder")
            incident.released = (entry.seq, f"incident released by {who}: {detail.get('reason')}")
        elif isinstance(step_id, str):
            return self._step_entry(incident, entry, step_id)
        return None

    def _step_entry(
        self, incident: _Incident, entry: AuditEntry, step_id: str
    ) -> StepOutcome | None:
        step = incident.step(step_id)
        kind, detail = entry.kind, entry.detail
        if kind == "step.planned":
            step.planned_by = incident.decision
            step.reversible = bool(detail.get("reversible", True))
            return None
        if kind == "lease.expired":
            step.cause = (entry.seq, "its lease expired")
        elif kind == "guard.tripped":
            services = ", ".join(str(s) for s in detail.get("services", []))
            step.cause = (entry.seq, f"guard: {services} unhealthy after the step")
            if not step.reversible:
                return self._escalated(incident, entry, step_id, f"{step.cause[1]}; irreversible")
        elif kind == "approval.timeout" and detail.get("on_timeout") == "escalate":
            return self._escalated(incident, entry, step_id, "nobody approved it in time")
        elif kind == "guard.unavailable" and detail.get("moment") == "after":
            reason = f"essential services could not be probed after it: {detail.get('error')}"
            return self._escalated(incident, entry, step_id, reason)
        elif kind.startswith("step."):
            return self._transition(incident, entry, step_id, kind.removeprefix("step."))
        return None

    def _transition(
        self, incident: _Incident, entry: AuditEntry, step_id: str, state: str
    ) -> StepOutcome | None:
        step = incident.step(step_id)
        if state == ESCALATED_STATE:
            if step.escalated:  # the approval timeout that led here was read already
                return None
            return self._escalated(incident, entry, step_id, _why(entry.detail, "escalated"))
        if state not in STATES:  # step.intent, step.preview, step.drift, ...: no transition
            return None
        previous, step.state, step.escalated = step.state, state, False
        if state == StepState.VERIFIED:
            again = " (re-applied after drift)" if entry.detail.get("reapplied") else ""
            return self._outcome(incident, entry, step_id, Outcome.CONTAINED, "verified" + again)
        if state == StepState.ROLLED_BACK:
            cause = self._cause(incident, step)
            return self._outcome(incident, entry, step_id, Outcome.REVERTED, cause)
        if state == StepState.FAILED:
            error = _why(entry.detail, "failed")
            step.cause = (entry.seq, f"undone after: {error}")
            undoing = previous == StepState.ROLLING_BACK
            return self._outcome(incident, entry, step_id, Outcome.FAILED, error, undoing=undoing)
        return None

    def _escalated(
        self, incident: _Incident, entry: AuditEntry, step_id: str, reason: str
    ) -> StepOutcome:
        incident.step(step_id).escalated = True
        return self._outcome(incident, entry, step_id, Outcome.ESCALATED, reason)

    def _outcome(
        self,
        incident: _Incident,
        entry: AuditEntry,
        step_id: str,
        outcome: Outcome,
        reason: str,
        *,
        undoing: bool = False,
    ) -> StepOutcome:
        planned_by = incident.step(step_id).planned_by
        return StepOutcome(
            incident_id=entry.incident_id,
            seq=entry.seq,
            at=entry.at,
            step_id=step_id,
            outcome=outcome,
            reason=reason,
            undoing=undoing,
            decided=planned_by or incident.decision,
        )

    @staticmethod
    def _cause(incident: _Incident, step: _Step) -> str:
        """Why the step was undone: the latest of its own causes and the release."""
        causes = [c for c in (step.cause, incident.released) if c is not None]
        return max(causes)[1] if causes else "undone"

    def _incident(self, incident_id: str) -> _Incident:
        found = self._incidents.get(incident_id)
        if found is None:
            found = self._incidents[incident_id] = _Incident()
            while len(self._incidents) > self._max:
                self._incidents.popitem(last=False)
        else:
            self._incidents.move_to_end(incident_id)
        return found


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _why(detail: dict[str, Any], default: str) -> str:
    for key in ("error", "reason"):
        if isinstance(detail.get(key), str) and detail[key]:
            return str(detail[key])
    return default
