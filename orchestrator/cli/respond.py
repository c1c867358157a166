"""`bulkhead approve|deny|extend|release|automation`: responder actions over the API."""

from __future__ import annotations

from typing import Any

from orchestrator.cli import render
from orchestrator.cli.client import Api, Failure, path_segment

TIMEOUT_S = 70.0  # a release waits for every rollback to be verified


def post(
    api: Api, path: str, body: dict[str, Any], *, incident_id: str | None = None, as_json: bool
) -> int:
    """POST one action (`Failure` if refused); on an unknown step, also list the real ones."""
    try:
        payload = api.post(path, body)
    except Failure as failure:
        if failure.slug == "unknown-step" and incident_id is not None:
            failure.details.extend(_real_steps(api, incident_id))
        raise
    if as_json:
        render.print_json(payload)
    else:
        render.action_result(payload)
    return 0


def _real_steps(api: Api, incident_id: str) -> list[str]:
    """The line 'steps of INC: a, b' from a fresh read; none when that read fails too."""
    try:
        view = api.get(f"/v1/incidents/{path_segment(incident_id)}")
    except Failure:
        return []
    steps = view.get("steps") if isinstance(view, dict) else None
    if not isinstance(steps, list):
        return []
    ids = [str(step["id"]) for step in steps if isinstance(step, dict) and "id" in step]
    return [f"steps of {incident_id}: {', '.join(ids)}" if ids else f"{incident_id} has no steps"]
