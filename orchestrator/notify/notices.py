"""Which audit entries a person should hear of, as notices.

The trail names the entry's kind and step; the incident (lookup.py) adds the rest (the
step's plan, its approval deadline and roles, the zone and severity) before routing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.incident import AuditEntry

# Steps whose lease expired and whose rollback is not read yet; the oldest are forgotten.
MAX_REMEMBERED = 10_000


class Kind(StrEnum):
    APPROVAL_NEEDED = "approval_needed"
    APPROVAL_ESCALATED = "approval_escalated"  # nobody approved before the deadline
    STEP_FAILED = "step_failed"
    STEP_ESCALATED = "step_escalated"
    GUARD_ROLLBACK = "guard_rollback"
    LEASE_REVERTED = "lease_reverted"
    RELEASED = "released"
    INCIDENT_OPENED = "incident_opened"
    DECISION_ESCALATED = "decision_escalated"  # the policy left it to a person
    APPROVAL_DEADLINE_NEAR = "approval_deadline_near"  # reminders.py
    LEASE_EXPIRING = "lease_expiring"
    AUTOMATION_PAUSED = "automation_paused"  # automation.py
    AUTOMATION_RESUMED = "automation_resumed"
    STEP_HOLDS = "step_holds"  # verified or its lease extended: not sent, sets a reminder


@dataclass(frozen=True)
class Notice:
    kind: Kind
    incident_id: str
    seq: int
    at: str
    step: str | None = None
    reason: str = ""
    # Filled from the incident (lookup.py): zone, severity_id, roles_needed,
    # required_approvals, deadline, plan, blast_radius.
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """At most one message per (incident, kind) per window (window.py)."""
        return (self.incident_id, self.kind.value)


class Reader:
    """Reads entries in trail order; remembers only what later entries need (which step's
    lease expired, so its rollback reads as a lease reverted)."""

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self._lease_ended: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._max = max_remembered

    def read(self, entry: AuditEntry) -> Notice | None:
        kind, detail = entry.kind, entry.detail
        if kind == "incident.opened":
            return _notice(entry, Kind.INCIDENT_OPENED)
        if kind == "release.requested":
            who = detail.get("principal", "a responder")
            return _notice(entry, Kind.RELEASED, f"released by {who}: {detail.get('reason')}")
        if kind == "decision" and detail.get("verdict") == "escalate":
            reasons = "; ".join(str(r) for r in detail.get("reasons") or [])
            return _notice(entry, Kind.DECISION_ESCALATED, reasons[:500])
        step = detail.get("step")
        return self._step_entry(entry, step) if isinstance(step, str) else None

    def _step_entry(self, entry: AuditEntry, step: str) -> Notice | None:
        kind, detail = entry.kind, entry.detail
        if kind == "step.planned" and detail.get("awaiting_approval"):
            return _notice(entry, Kind.APPROVAL_NEEDED)  # planned to wait (deciding.py)
        if kind == "step.awaiting_approval":  # a transition into it, should one be recorded
            return _notice(entry, Kind.APPROVAL_NEEDED)
        if kind == "approval.timeout" and detail.get("on_timeout") == "escalate":
            return _notice(entry, Kind.APPROVAL_ESCALATED, "nobody approved it before its deadline")
        if kind == "guard.tripped":
            services = ", ".join(str(s) for s in detail.get("services", []))
            return _notice(entry, Kind.GUARD_ROLLBACK, f"{services} unhealthy after the step")
        if kind == "guard.unavailable" and detail.get("moment") == "after":
            reason = "essential services could not be probed after it"
            return _notice(entry, Kind.STEP_ESCALATED, reason)
        if kind in ("step.verified", "lease.extended"):
            return _notice(entry, Kind.STEP_HOLDS)
        if kind == "step.failed":
            return _notice(entry, Kind.STEP_FAILED, _why(detail, "failed"))
        if kind == "step.escalated":
            return _notice(entry, Kind.STEP_ESCALATED, _why(detail, "escalated"))
        return self._lease(entry, step)

    def _lease(self, entry: AuditEntry, step: str) -> Notice | None:
        key = (entry.incident_id, step)
        if entry.kind == "lease.expired":
            self._lease_ended[key] = None
            while len(self._lease_ended) > self._max:
                self._lease_ended.popitem(last=False)
        elif entry.kind == "step.rolled_back" and key in self._lease_ended:
            del self._lease_ended[key]
            return _notice(entry, Kind.LEASE_REVERTED, "its lease expired")
        return None


def _notice(entry: AuditEntry, kind: Kind, reason: str = "") -> Notice:
    step = entry.detail.get("step")
    return Notice(
        kind,
        entry.incident_id,
        entry.seq,
        entry.at,
        step if isinstance(step, str) else None,
        reason,
    )


def _why(detail: dict[str, Any], default: str) -> str:
    for key in ("error", "reason"):
        if isinstance(detail.get(key), str) and detail[key]:
            return str(detail[key])
    return default
