"""`bulkhead incidents ls|show`: read incidents from a running API."""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlencode

import httpx

from orchestrator.cli import render

TIMEOUT_S = 15.0


def _get(url: str) -> tuple[int, Any]:
    try:
        response = httpx.get(url, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        print(f"error: cannot reach {url}: {exc}", file=sys.stderr)
        return 0, None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def ls(api_url: str, *, as_json: bool, filters: dict[str, Any] | None = None) -> int:
    query = urlencode({k: v for k, v in (filters or {}).items() if v is not None})
    status, body = _get(f"{api_url}/v1/incidents" + (f"?{query}" if query else ""))
    if status != 200:
        return _fail(status, body)
    if as_json:
        render.print_json(body)
    else:
        render.incident_table(body["incidents"])
    return 0


def show(api_url: str, incident_id: str, *, as_json: bool = False) -> int:
    status, body = _get(f"{api_url}/v1/incidents/{incident_id}")
    if status != 200:
        return _fail(status, body)
    if as_json:
        render.print_json(body)
    else:
        render.incident_detail(body)
    return 0


def _fail(status: int, body: Any) -> int:
    if status:
        detail = body.get("detail") if isinstance(body, dict) else body
        print(f"error: API answered {status}: {detail}", file=sys.stderr)
    return 1
