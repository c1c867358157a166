"""`bulkhead incidents ls|show`: read incidents from a running API (viewer or higher)."""

from __future__ import annotations

from typing import Any

from orchestrator.cli import render
from orchestrator.cli.client import EXIT_API_FAILED, Api, Failure, path_segment

TIMEOUT_S = 15.0


def ls(api: Api, *, as_json: bool, filters: dict[str, Any] | None = None) -> int:
    """Print the incident list; `Failure` when the API cannot or will not give it."""
    params = {k: v for k, v in (filters or {}).items() if v is not None}
    body = api.get("/v1/incidents", params=params)
    if not isinstance(body, dict) or not isinstance(body.get("incidents"), list):
        raise Failure(EXIT_API_FAILED, f"{api.url} answered without an incident list")
    if as_json:
        render.print_json(body)
    else:
        render.incident_table(body["incidents"])
    return 0


def show(api: Api, incident_id: str, *, as_json: bool = False) -> int:
    """Print one incident; `Failure` when the API cannot or will not give it."""
    body = api.get(f"/v1/incidents/{path_segment(incident_id)}")
    if not isinstance(body, dict) or "incident_id" not in body:
        raise Failure(EXIT_API_FAILED, f"{api.url} answered without an incident")
    if as_json:
        render.print_json(body)
    else:
        render.incident_detail(body)
    return 0
