"""Which audit entries a person should hear of, as notices.

The trail names the entry's kind and step; the incident (lookup.py) adds the rest (the
step's plan, its approval deadline and roles, the zone and severity) before routing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.incident import AuditEntry


class Kind(StrEnum):
    APPROVAL_NEEDED = "approval_needed"
    APPROVAL_ESCALATED = "approval_escalated"  # nobody approved before the deadline
    STEP_FAILED = "step_failed"
    STEP_ESCALATED = "step_escalated"
    GUARD_ROLLBACK = "guard_rollback"
    LEASE_REVERTED = "lease_reverted"
    RELEASED = "released"
    INCIDENT_OPENED = "incident_opened"


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
    """Reads entries in trail order; remembers only what later entries need (which step
    was tripped by the guard, so its rollback reads as a guard rollback)."""

    def __init__(self) -> None:
        self._cause: dict[tuple[str, str], Kind] = {}

    def read(self, entry: AuditEntry) -> Notice | None:
        kind, detail = entry.kind, entry.detail
        step = detail.get("step") if isinstance(detail.get("step"), str) else None

        def notice(what: Kind, reason: str = "") -> Notice:
            return Notice(what, entry.incident_id, entry.seq, entry.at, step, reason)

        if kind == "incident.opened":
            return notice(Kind.INCIDENT_OPENED)
        if kind == "release.requested":
            who = detail.get("principal", "a responder")
            return notice(Kind.RELEASED, f"released by {who}: {detail.get('reason')}")
        if step is None:
            return None
        if kind == "step.planned" and detail.get("awaiting_approval"):
            return notice(Kind.APPROVAL_NEEDED)  # planned waiting for people (deciding.py)
        if kind == "step.awaiting_approval":  # a transition into it, should one be recorded
            return notice(Kind.APPROVAL_NEEDED)
        if kind == "approval.timeout" and detail.get("on_timeout") == "escalate":
            return notice(Kind.APPROVAL_ESCALATED, "nobody approved it before its deadline")
        if kind == "guard.tripped":
            self._cause[(entry.incident_id, step)] = Kind.GUARD_ROLLBACK
            services = ", ".join(str(s) for s in detail.get("services", []))
            return notice(Kind.GUARD_ROLLBACK, f"{services} unhealthy after the step")
        if kind == "lease.expired":
            self._cause[(entry.incident_id, step)] = Kind.LEASE_REVERTED
        elif kind == "step.rolled_back":
            if self._cause.pop((entry.incident_id, step), None) == Kind.LEASE_REVERTED:
                return notice(Kind.LEASE_REVERTED, "its lease expired")
        elif kind == "step.failed":
            return notice(Kind.STEP_FAILED, _why(detail, "failed"))
        elif kind == "step.escalated":
            return notice(Kind.STEP_ESCALATED, _why(detail, "escalated"))
        return None


def _why(detail: dict[str, Any], default: str) -> str:
    for key in ("error", "reason"):
        if isinstance(detail.get(key), str) and detail[key]:
            return str(detail[key])
    return default
