"""`bulkhead release INCIDENT [--step STEP]`: say what will be undone, confirm, release,
then say what was reverted and what could not be.

At a terminal the command asks before it acts (unless --yes); piped or scripted it acts
at once, after printing the same preview, so a log shows what the release meant to do.
"""

from __future__ import annotations

import sys
from typing import Any

from orchestrator.cli import render
from orchestrator.cli.client import EXIT_API_FAILED, EXIT_FAILED, Api, Failure, path_segment


def _lines(title: str, undos: list[dict[str, Any]], note: str = "") -> list[str]:
    if not undos:
        return []
    rows = [f"{title}:"]
    for undo in undos:
        why = f" ({undo['error']})" if note == "error" and undo.get("error") else ""
        rows.append(f"  {undo['step_id']}: {undo.get('words') or undo['kind']}{why}")
    return rows


def preview_text(preview: dict[str, Any]) -> list[str]:
    quarantined = set(preview.get("quarantines", []))
    reverts = [
        {
            **u,
            "kind": u["kind"]
            + (", the host can talk again" if u["step_id"] in quarantined else ""),
        }
        for u in preview.get("reverts", [])
    ]
    return [
        f"release {preview['incident_id']}"
        + (f" step {preview['step_id']}" if preview.get("step_id") else "")
        + f": {preview['summary']}",
        *_lines("will be undone, newest first", reverts),
        *_lines("stays (cannot be undone)", preview.get("stays", [])),
        *_lines("cancelled (never applied)", preview.get("cancels", [])),
    ]


def report_text(report: dict[str, Any]) -> list[str]:
    return [
        f"released: {report['summary']}",
        *_lines("reverted", report.get("reverted", [])),
        *_lines("could not be reverted", report.get("not_reverted", []), note="error"),
        *_lines("stayed", report.get("stayed", [])),
    ]


def _confirmed() -> bool:
    try:
        answer = input("Release? Type yes to go on: ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def release(
    api: Api, incident_id: str, *, step_id: str | None, reason: str, yes: bool, as_json: bool
) -> int:
    incident = path_segment(incident_id)
    params = {"step": step_id} if step_id else None
    preview = api.get(f"/v1/incidents/{incident}/release-preview", params=params)
    if not isinstance(preview, dict) or "summary" not in preview:
        raise Failure(EXIT_API_FAILED, f"{api.url} answered without a release preview")
    if not as_json:
        print("\n".join(preview_text(preview)))
    if not yes and sys.stdin.isatty() and not _confirmed():
        print("not released", file=sys.stderr)
        return EXIT_FAILED
    path = f"/v1/incidents/{incident}/release"
    if step_id:
        path = f"/v1/incidents/{incident}/steps/{path_segment(step_id)}/release"
    answer = api.post(path, {"reason": reason})
    if as_json:  # the API's answer, as every command prints it: it holds the report
        render.print_json(answer)
        return 0
    report = answer.get("release_report") if isinstance(answer, dict) else None
    if isinstance(report, dict):
        print("\n".join(report_text(report)))
    # A step left in force that was meant to go back is a problem someone must look at.
    return EXIT_FAILED if isinstance(report, dict) and report.get("not_reverted") else 0
