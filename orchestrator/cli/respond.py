"""`bulkhead approve|deny|extend|release|automation`: responder actions over the API."""

from __future__ import annotations

import sys
from typing import Any

import httpx

TIMEOUT_S = 70.0  # a release waits for every rollback to be verified


def post(
    api_url: str, path: str, body: dict[str, Any], token: str | None, *, as_json: bool = False
) -> int:
    if not token:
        print(
            "error: no token: pass --token or set BULKHEAD_TOKEN (see `bulkhead principals add`)",
            file=sys.stderr,
        )
        return 2
    url = f"{api_url}{path}"
    try:
        response = httpx.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        print(f"error: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    try:
        payload = response.json()
    except ValueError:
        payload = response.text
    if response.status_code != 200:
        detail = payload.get("detail") if isinstance(payload, dict) else payload
        print(f"error: {response.status_code}: {detail}", file=sys.stderr)
        return 1
    from orchestrator.cli import render  # noqa: PLC0415 - rich only when there is output

    if as_json:
        render.print_json(payload)
    else:
        render.action_result(payload)
    return 0
