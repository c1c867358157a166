"""`bulkhead incidents ls|show`: read incidents from a running API."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx

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


def ls(api_url: str, *, as_json: bool) -> int:
    status, body = _get(f"{api_url}/v1/incidents")
    if status != 200:
        return _fail(status, body)
    if as_json:
        print(json.dumps(body, indent=2))
        return 0
    rows = body["incidents"]
    print(f"{'INCIDENT':<32} {'STATUS':<18} {'SEV':>3} {'FINDINGS':>8}  STEPS")
    for row in rows:
        steps = ", ".join(f"{k}={v}" for k, v in row["steps"].items()) or "-"
        print(
            f"{row['incident_id']:<32} {row['status']:<18} {row['severity_id']:>3} "
            f"{row['findings']:>8}  {steps}"
        )
    if not rows:
        print("(no open incidents)")
    return 0


def show(api_url: str, incident_id: str) -> int:
    status, body = _get(f"{api_url}/v1/incidents/{incident_id}")
    if status != 200:
        return _fail(status, body)
    print(json.dumps(body, indent=2))
    return 0


def _fail(status: int, body: Any) -> int:
    if status:
        detail = body.get("detail") if isinstance(body, dict) else body
        print(f"error: API answered {status}: {detail}", file=sys.stderr)
    return 1
