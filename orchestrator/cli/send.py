"""`bulkhead send SOURCE FILE`: sign a payload like a SIEM would and post it."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import httpx

from orchestrator.config import Settings, webhook_secret
from orchestrator.webhooks import sign

TIMEOUT_S = 15.0


def send(settings: Settings, source: str, path: Path, *, api_url: str | None = None) -> int:
    secret = webhook_secret(settings)
    if secret is None:
        print(
            f"error: no webhook secret: set BULKHEAD_WEBHOOK_SECRET or run `bulkhead up` with "
            f"--state-dir {settings.state_dir} first",
            file=sys.stderr,
        )
        return 2
    try:
        body = path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    headers = sign(body, secret, msg_id=f"msg_{uuid.uuid4().hex}", timestamp=int(time.time()))
    headers["content-type"] = "application/json"
    url = f"{api_url or settings.api_url}/v1/webhooks/{source}"
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        print(f"error: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    try:
        shown = json.dumps(response.json(), indent=2)
    except ValueError:
        shown = response.text
    print(shown)
    if response.status_code != 202:
        print(f"error: {url} answered {response.status_code}", file=sys.stderr)
        return 1
    return 0
