"""`bulkhead incidents show` as a duty officer reads it, in a 100-column terminal.

Per step: what it does in words (its dry run), the deadline to decide by and whether it
has passed, the approvals and roles still needed, the lease, the value read back; then
who did what and why, from the audit trail. Lines are wrapped here, at word boundaries
only (never inside an id such as `revoke:svc-scada@ldap-city`), because a table's cells
would fold ids in a narrow terminal. Reads the API's JSON as plain dicts: a status or a
field this version does not know is shown as it is, never an error.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from orchestrator.responders import times, wording

LABEL = 11  # the widest label, "decide by", "read back", plus room
AUDIT_SHOWN = 10


def wrap(text: str, width: int, *, first: str = "", rest: str | None = None) -> list[str]:
    """`text` in lines of at most `width` columns, broken at spaces only (a word longer
    than a whole line, which no id is, is the one thing split)."""
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=first if rest is None else rest,
        break_on_hyphens=False,
        break_long_words=True,
    ) or [first.rstrip()]


def field(label: str, value: str, width: int) -> list[str]:
    head = f"  {label:<{LABEL}}"
    return wrap(value, width, first=head, rest=" " * len(head))


def _approver(record: Mapping[str, Any]) -> str:
    roles = ", ".join(record.get("roles") or [])
    who = f"{record.get('principal', '?')} ({roles})" if roles else str(record.get("principal"))
    return f"{who} at {times.utc(record.get('at'))}: {record.get('reason', '')}"


def still_needed(step: Mapping[str, Any]) -> str | None:
    """What approvals the step still waits for: how many, and which roles must be among
    them (`must_include_roles` no approver so far held); None when it waits for nothing."""
    if step.get("state") != "awaiting_approval":
        return None
    given = step.get("approvals") or []
    more = max(int(step.get("required_approvals") or 0) - len(given), 0)
    held = {role for record in given for role in record.get("roles") or []}
    missing = [r for r in step.get("must_include_roles") or [] if r not in held]
    if not more and not missing:
        return None
    said = f"{more} more approval{'s' if more != 1 else ''}"
    if missing:
        said += f", including a {' and a '.join(missing)}"
    roles = step.get("approval_roles") or []
    if roles:
        said += f" (from: {', '.join(roles)})"
    return said


def deadline(step: Mapping[str, Any], now: datetime | None = None) -> str | None:
    """The time to decide by, labelled, and OVERDUE once it has passed (or the workflow
    says so: `overdue_since`)."""
    due = step.get("approval_deadline")
    overdue_since = step.get("overdue_since")
    if not due and not overdue_since:
        return None
    said = times.labelled(due, now) if due else "-"
    if overdue_since:
        said += f"; OVERDUE since {times.utc(overdue_since)}"
    elif step.get("state") == "awaiting_approval" and times.passed(due, now):
        said += "; OVERDUE"
    return said


def step_lines(
    step: Mapping[str, Any],
    width: int,
    *,
    because: Sequence[str] = (),
    now: datetime | None = None,
) -> list[str]:
    lines = wrap(f"{step.get('id', '?')}  {step.get('state', '?')}", width)
    lines += field("plan", wording.plan_in_words(step), width)
    due = deadline(step, now)
    if due:
        lines += field("decide by", due, width)
    needed = still_needed(step)
    if needed:
        lines += field("needs", needed, width)
    for record in step.get("approvals") or []:
        lines += field("approved", _approver(record), width)
    if step.get("denial"):
        lines += field("denied", _approver(step["denial"]), width)
    if step.get("lease_expires_at"):
        lines += field("lease", f"until {times.labelled(step['lease_expires_at'], now)}", width)
    if step.get("reversible") is False:
        lines += field("undo", "none: this step cannot be undone", width)
    read = wording.readback_in_words(step)
    if read:
        lines += field("read back", read, width)
    if step.get("error"):
        lines += field("error", str(step["error"]), width)
    for reason in because:
        lines += field("why", reason, width)
    return lines


def _because(view: Mapping[str, Any]) -> dict[str, list[str]]:
    """The policy's reasons per step id (why it is there, why it needs its approval)."""
    decision = view.get("decision") or {}
    return {
        str(s.get("id")): [str(r.get("text", r)) for r in s.get("because") or []]
        for s in decision.get("steps") or []
    }


def who_and_why(detail: Mapping[str, Any]) -> str:
    """An audit entry's actor and reason: the person who acted, the policy that decided,
    or else Bulkhead itself; the reason they gave, or what went wrong."""
    if detail.get("principal"):
        who = str(detail["principal"])
    elif detail.get("policy_version"):
        who = "policy"
    else:
        who = "bulkhead"
    why = detail.get("reason") or detail.get("error") or ""
    if not why and detail.get("verdict"):
        why = f"verdict {detail['verdict']}"
    if not why and isinstance(detail.get("services"), list):
        why = f"services {', '.join(map(str, detail['services']))}"
    step = detail.get("step")
    said = f"{step} by {who}" if step else f"by {who}"
    return f"{said}: {why}" if why else said


def audit_lines(entries: Iterable[Mapping[str, Any]], width: int) -> list[str]:
    lines: list[str] = []
    for entry in entries:
        head = f"  {entry.get('seq', '?'):>4} {times.utc(entry.get('at'))} "
        text = f"{entry.get('kind', '?')} {who_and_why(entry.get('detail') or {})}"
        lines += wrap(text, width, first=head, rest=" " * (len(head) + 2))
    return lines


def incident_lines(view: Mapping[str, Any], width: int, now: datetime | None = None) -> list[str]:
    """The whole `incidents show` text, each line at most `width` columns."""
    findings = view.get("findings_received", len(view.get("findings") or []))
    lines = wrap(
        f"{view.get('incident_id')}  {view.get('status')}  entity {view.get('entity')}  "
        f"findings {findings}",
        width,
    )
    decision = view.get("decision")
    if decision:
        lines += wrap(
            f"decision {decision.get('verdict')} (policy "
            f"{str(decision.get('policy_version', ''))[:19]}, id {decision.get('decision_id')})",
            width,
        )
        for reason in decision.get("reasons") or []:
            lines += wrap(str(reason), width, first="  - ", rest="    ")
    for escalation in view.get("escalations") or []:
        lines += wrap(f"escalated: {escalation}", width, rest="  ")
    if view.get("earlier"):
        # The same entity's earlier incidents, oldest first: `bulkhead incidents show ID`.
        lines += wrap(
            f"earlier incidents of {view.get('entity')}: {', '.join(view['earlier'])}", width
        )
    steps = view.get("steps") or []
    if steps:
        lines += ["", "What the steps do:"]
        for sentence in wording.grouped_in_words(steps):
            lines += wrap(sentence, width, first="  - ", rest="    ")
        because = _because(view)
        for step in steps:
            lines += [
                "",
                *step_lines(step, width, because=because.get(step.get("id"), []), now=now),
            ]
    audit = list(view.get("audit") or [])[-AUDIT_SHOWN:]
    if audit:
        total = view.get("audit_total", len(audit))
        lines += ["", f"Audit, last {len(audit)} of {total} (who: why):"]
        lines += audit_lines(audit, width)
    return lines
