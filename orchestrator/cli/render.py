"""Terminal output of the responder commands: rich tables by default, JSON with --json.

Kept apart from the HTTP calls so every command renders an incident or a step the same
way. Colours and widths come from rich, which falls back to plain text when piped.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.cli import detail

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
    # COLUMNS, when set, wins even when piped: a script or a test asks for its width.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH
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


def incident_detail(view: dict[str, Any], out: Console | None = None) -> None:
    """`incidents show`: wrapped to the terminal here (orchestrator/cli/detail.py), so rich
    must not wrap it again."""
    out = out or console()
    for line in detail.incident_lines(view, out.width):
        out.print(_state_coloured(line), soft_wrap=True)


def _state_coloured(line: str) -> Text:
    text = Text(line)
    head = line.split("  ", 2)
    if len(head) >= 2 and head[1].strip() in STATE_STYLE:
        # "<id>  <state>": the header of the incident or of a step.
        start = len(head[0]) + 2
        text.stylize(STATE_STYLE[head[1].strip()], start, start + len(head[1].strip()))
    return text


def action_result(payload: Any) -> None:
    """What approve/deny/extend (a step) or release (an incident) answered."""
    if isinstance(payload, dict) and "incident_id" in payload and "steps" in payload:
        incident_detail(payload)
    elif isinstance(payload, dict) and "state" in payload and "adapter" in payload:
        out = console()
        for line in detail.step_lines(payload, out.width):
            out.print(_state_coloured(line), soft_wrap=True)
    else:
        print_json(payload)
