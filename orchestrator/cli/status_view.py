"""`bulkhead status` on a terminal: the city picture (`GET /v1/city`) in at most 100
columns. It reads the JSON as plain dicts, so an older or newer API still prints, and a
status it does not know is shown as it is."""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.responders import times

MAX_WIDTH = 100
STATE_WORDS = {
    "unhealthy": "[bold red]✖ essential service unhealthy[/]",
    "awaiting_approval": "[yellow]◆ awaiting approval[/]",
    "contained": "[cyan]■ contained[/]",
    "normal": "[green]✓ normal[/]",
}


def width() -> int:
    """The terminal's width, at most 100 columns; 100 when piped."""
    if sys.stdout.isatty():
        return min(MAX_WIDTH, shutil.get_terminal_size((MAX_WIDTH, 24)).columns)
    return MAX_WIDTH


def _moment(at: Any) -> datetime | None:
    return times.parse(at) if isinstance(at, str) else None


def clock(at: Any, now: datetime | None = None) -> str:
    """`00:59 UTC`, with the date when it is not `now`'s day."""
    moment = _moment(at)
    if moment is None:
        return str(at) if at else "-"
    if now is not None and moment.date() == now.date():
        return moment.strftime("%H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def span(seconds: float) -> str:
    minutes = round(abs(seconds) / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if hours < 48 else f"{hours // 24} d {hours % 24} h"


def countdown(at: Any, now: datetime, *, ends: str, ended: str, missing: str) -> str:
    """`lease ends in 41 min, 00:59 UTC`, or `lease ended 2 min ago, 00:16 UTC`."""
    moment = _moment(at)
    if moment is None:
        return f"{ends} {escape(str(at))}" if at else missing
    left = (moment - now).total_seconds()
    if left < 0:
        return f"{ended} {span(left)} ago, {clock(at, now)}"
    return f"{ends} in {span(left)}, {clock(at, now)}"


def _automation(picture: dict[str, Any], now: datetime) -> str:
    automation = picture.get("automation") or {}
    paused = automation.get("paused")
    who = escape(str(automation.get("changed_by") or "someone"))
    when = clock(automation.get("changed_at"), now) if automation.get("changed_at") else ""
    reason = escape(str(automation.get("reason") or ""))
    if paused is None:
        return "[bold]Automation: UNKNOWN[/] (the city record could not be read)"
    if paused:
        line = f"[bold white on red] AUTOMATION PAUSED [/] by {who}"
        line += f" at {when}" if when else ""
        line += f": {reason}" if reason else ""
        return line + " (every new step waits for approval)"
    if automation.get("changed_by"):
        return f"Automation: running (resumed by {who} at {when}{': ' + reason if reason else ''})"
    return "Automation: running"


def _count(value: Any) -> str:
    return "?" if value is None else str(value)


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _zones(picture: dict[str, Any]) -> Table:
    table = _table("Zones", "ZONE", "STATE", "CONTAINED", "WAITING", "SERVICES")
    for zone in picture.get("zones") or []:
        state = str(zone.get("state"))
        shown = STATE_WORDS.get(state, escape(state))
        waiting = str(zone.get("awaiting_approval", 0))
        if zone.get("overdue"):
            waiting += f" ({zone['overdue']} overdue)"
        services = []
        for service in zone.get("services") or []:
            health = {True: "ok", False: "[bold red]DOWN[/]", None: "?"}.get(
                service.get("healthy"), "?"
            )
            services.append(f"{escape(str(service.get('id')))} {health}")
        table.add_row(
            escape(str(zone.get("id"))),
            shown,
            str(len(zone.get("contained") or [])),
            waiting,
            ", ".join(services) or "-",
        )
    return table


def _contained(picture: dict[str, Any], now: datetime) -> Table | None:
    table = _table("Contained", "ZONE", "STEP", "TARGET", "INCIDENT", "LEASE")
    for zone in picture.get("zones") or []:
        for held in zone.get("contained") or []:
            lease = countdown(
                held.get("lease_expires_at"),
                now,
                ends="lease ends",
                ended="lease ended",
                missing="no lease",
            )
            table.add_row(
                escape(str(zone.get("id"))),
                escape(str(held.get("step_id"))),
                escape(str(held.get("target"))),
                escape(str(held.get("incident_id"))),
                lease,
            )
    return table if table.row_count else None


def _waiting(picture: dict[str, Any], now: datetime) -> Table | None:
    table = _table("Waiting for approval", "INCIDENT", "STEP", "ZONE", "DEADLINE")
    for step in (picture.get("approvals") or {}).get("waiting") or []:
        if step.get("overdue"):
            since = step.get("overdue_since") or step.get("approval_deadline")
            deadline = f"[bold red]OVERDUE[/] since {clock(since, now)}"
        else:
            deadline = countdown(
                step.get("approval_deadline"),
                now,
                ends="due",
                ended="was due",
                missing="no deadline",
            )
        table.add_row(
            escape(str(step.get("incident_id"))),
            escape(str(step.get("step_id"))),
            escape(str(step.get("zone") or "-")),
            deadline,
        )
    return table if table.row_count else None


def _recent(picture: dict[str, Any]) -> Table | None:
    table = _table("Recently escalated or released", "INCIDENT", "STATUS", "ZONES", "SEV")
    for incident in picture.get("recent") or []:
        table.add_row(
            escape(str(incident.get("incident_id"))),
            escape(str(incident.get("status"))),
            escape(", ".join(str(z) for z in incident.get("zones") or []) or "-"),
            str(incident.get("severity_id", "")),
        )
    return table if table.row_count else None


def show(picture: dict[str, Any], out: Console | None = None) -> None:
    out = out or Console(width=width(), soft_wrap=False, highlight=False)
    now = _moment(picture.get("generated_at")) or datetime.now(UTC)
    city = escape(str(picture.get("city") or "city"))
    out.print(f"[bold]{city}[/], right now: {clock(picture.get('generated_at'))}")
    out.print(_automation(picture, now))
    budget = picture.get("budget") or {}
    out.print(
        f"Blast-radius budget: {_count(budget.get('used'))} of {_count(budget.get('max'))} "
        "automatic containments"
    )
    approvals = picture.get("approvals") or {}
    overdue = approvals.get("overdue")
    late = f"[bold red]{overdue} overdue[/]" if overdue else f"{_count(overdue)} overdue"
    out.print(f"Approvals: {_count(approvals.get('pending'))} pending, {late}")
    for unread in picture.get("unavailable") or []:
        out.print(f"[red]not shown:[/] {escape(str(unread))}")
    if picture.get("truncated"):
        out.print("[yellow]more incidents hold steps than were read; counts are from the list[/]")
    out.print()
    out.print(_zones(picture) if picture.get("zones") else "(no zones in the inventory)")
    for table in (_contained(picture, now), _waiting(picture, now), _recent(picture)):
        if table is not None:
            out.print()
            out.print(table)
