"""Terminal output of the responder commands: rich tables by default, JSON with --json.

Kept apart from the HTTP calls so every command renders an incident or a step the same
way. Colours and widths come from rich, which falls back to plain text when piped.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

STATE_STYLE = {
    "verified": "green",
    "applied": "green",
    "awaiting_approval": "yellow",
    "approved": "cyan",
    "applying": "cyan",
    "rolling_back": "cyan",
    "failed": "bold red",
    "escalated": "bold yellow",
    "denied": "magenta",
    "expired": "magenta",
    "rolled_back": "blue",
    "contained": "green",
    "released": "blue",
}


PIPED_WIDTH = 200  # piped output is read by people and grep: never cut ids short


def console() -> Console:
    width = None if sys.stdout.isatty() else PIPED_WIDTH
    return Console(soft_wrap=False, highlight=False, width=width)


def _styled(value: str) -> str:
    style = STATE_STYLE.get(value)
    return f"[{style}]{value}[/{style}]" if style else value


def print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2))


def incident_table(incidents: list[dict[str, Any]]) -> None:
    out = console()
    if not incidents:
        out.print("(no open incidents)")
        return
    table = Table(title="Incidents", title_justify="left")
    for column in ("INCIDENT", "STATUS", "SEV", "ZONES", "FINDINGS", "STEPS"):
        numeric = column in ("SEV", "FINDINGS")
        table.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for row in incidents:
        steps = ", ".join(f"{k}={_styled(v)}" for k, v in row["steps"].items()) or "-"
        table.add_row(
            row["incident_id"],
            _styled(row["status"]),
            str(row["severity_id"]),
            ", ".join(row.get("zones", [])) or "-",
            str(row["findings"]),
            steps,
        )
    out.print(table)


def _approvals(step: dict[str, Any]) -> str:
    done = [f"{a['principal']}: {a['reason']}" for a in step.get("approvals", [])]
    needed = step.get("required_approvals", 0)
    if step.get("denial"):
        return f"denied by {step['denial']['principal']}: {step['denial']['reason']}"
    if not needed:
        return "automatic"
    return f"{len(done)}/{needed} " + ("; ".join(done) if done else "")


def step_table(steps: list[dict[str, Any]], title: str = "Steps") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("STEP", "STATE", "TARGET", "APPROVALS", "LEASE UNTIL", "NOTE"):
        table.add_column(column, overflow="fold")
    for step in steps:
        target = ", ".join(f"{k}={v}" for k, v in step.get("target", {}).items())
        note = step.get("error") or ("" if step.get("reversible", True) else "irreversible")
        table.add_row(
            step["id"],
            _styled(step["state"]),
            f"{step['adapter']}:{step['action']} {target}",
            _approvals(step),
            step.get("lease_expires_at") or "-",
            note,
        )
    return table


def incident_detail(view: dict[str, Any]) -> None:
    out = console()
    out.print(
        f"[bold]{view['incident_id']}[/bold]  {_styled(view['status'])}  entity {view['entity']}"
        f"  findings {view.get('findings_received', len(view.get('findings', [])))}"
    )
    decision = view.get("decision")
    if decision:
        out.print(
            f"decision {decision['verdict']} (policy {decision['policy_version'][:19]}, "
            f"id {decision['decision_id']})"
        )
        for reason in decision.get("reasons", []):
            out.print(f"  - {reason}")
    for escalation in view.get("escalations", []):
        out.print(f"[bold red]escalated:[/bold red] {escalation}")
    if view.get("earlier"):
        # The same entity's earlier incidents, oldest first: `bulkhead incidents show ID`.
        out.print(f"earlier incidents of {view['entity']}: {', '.join(view['earlier'])}")
    if view.get("steps"):
        out.print(step_table(view["steps"]))
        for step in (decision or {}).get("steps", []):
            # Why each step is there and why it needs its approval (the policy's reasons).
            for reason in step.get("because", []):
                out.print(f"  {step['id']}: {reason['text']}")
    audit = view.get("audit", [])[-10:]
    if audit:
        out.print(f"last {len(audit)} of {view.get('audit_total', len(audit))} audit entries:")
        for entry in audit:
            out.print(f"  {entry['seq']:>4} {entry['at'][11:23]} {entry['kind']}")


def action_result(payload: Any) -> None:
    """What approve/deny/extend (a step) or release (an incident) answered."""
    if isinstance(payload, dict) and "incident_id" in payload and "steps" in payload:
        incident_detail(payload)
    elif isinstance(payload, dict) and "state" in payload and "adapter" in payload:
        console().print(step_table([payload], title="Step"))
    else:
        print_json(payload)
