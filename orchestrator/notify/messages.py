"""What a message says: the incident, what happened, what is asked of the reader, and a
link to the incident in the console."""

from __future__ import annotations

from typing import Any

from orchestrator.notify.notices import Kind, Notice
from orchestrator.notify.window import Digest
from orchestrator.responders.links import console_link

HEADLINES = {
    Kind.APPROVAL_NEEDED: "Approval needed",
    Kind.APPROVAL_ESCALATED: "Escalated: nobody approved in time",
    Kind.STEP_FAILED: "Step failed",
    Kind.STEP_ESCALATED: "Step escalated",
    Kind.GUARD_ROLLBACK: "Guard rolled a step back",
    Kind.LEASE_REVERTED: "Lease ended: step reverted",
    Kind.RELEASED: "Incident released",
    Kind.INCIDENT_OPENED: "Incident opened",
    Kind.DECISION_ESCALATED: "Policy escalated the incident",
    Kind.APPROVAL_DEADLINE_NEAR: "Approval deadline near",
    Kind.LEASE_EXPIRING: "Lease ending soon",
    Kind.STEP_HOLDS: "Step holds",
    Kind.AUTOMATION_PAUSED: "Automation paused",
    Kind.AUTOMATION_RESUMED: "Automation resumed",
}
CITY_WIDE = (Kind.AUTOMATION_PAUSED, Kind.AUTOMATION_RESUMED)


def message_of(notice: Notice, public_url: str) -> tuple[str, str]:
    """(title, body)."""
    if notice.kind in CITY_WIDE:
        title = f"[Bulkhead] {HEADLINES[notice.kind]} {notice.reason}"
        body = f"{HEADLINES[notice.kind]} {notice.reason}\nAt: {notice.at}\n"
        return title, body + f"Console: {public_url.rstrip('/')}/console"
    facts = notice.facts
    title = f"[Bulkhead] {HEADLINES[notice.kind]}: incident {notice.incident_id}"
    lines = [f"Incident: {notice.incident_id}"]
    _line(lines, "Zone", facts.get("zone"))
    _line(lines, "Severity", facts.get("severity_id"))
    if notice.step:
        what = " ".join(str(facts[k]) for k in ("adapter", "action") if facts.get(k))
        lines.append(f"Step: {notice.step}" + (f" ({what})" if what else ""))
        _line(lines, "Target", _target(facts.get("target")))
    if notice.kind in (Kind.APPROVAL_NEEDED, Kind.APPROVAL_DEADLINE_NEAR):
        _line(lines, "Plan", facts.get("plan"))
        _line(lines, "Blast radius", "; ".join(facts.get("blast_radius") or []) or None)
        needed = facts.get("required_approvals")
        roles = ", ".join(facts.get("roles_needed") or [])
        if needed:
            lines.append(f"Approvals needed: {needed}" + (f" (roles: {roles})" if roles else ""))
        _line(lines, "Approve by", facts.get("deadline"))
    _line(lines, "Why", notice.reason or None)
    lines.append(f"At: {notice.at}")
    lines.append(f"Console: {console_link(public_url, notice.incident_id, notice.step)}")
    return title, "\n".join(lines)


def digest_message(digest: Digest, public_url: str) -> tuple[str, str]:
    title = f"[Bulkhead] {digest.text()}"
    waiting = sorted({n.incident_id for n in digest.notices if n.kind == Kind.APPROVAL_NEEDED})
    lines = [digest.text(), ""]
    if waiting:
        lines.append("Awaiting approval (first 10):")
        lines += [f"- {console_link(public_url, i)}" for i in waiting[:10]]
    lines.append(f"Console: {public_url.rstrip('/')}/console/incidents")
    return title, "\n".join(lines)


def _line(lines: list[str], label: str, value: Any) -> None:
    if value not in (None, "", []):
        lines.append(f"{label}: {value}")


def _target(target: Any) -> str | None:
    if not isinstance(target, dict) or not target:
        return None
    return ", ".join(f"{k}={v}" for k, v in sorted(target.items()))
