"""`bulkhead send SOURCE FILE`: post a payload the way that SIEM would, with its auth.

The source's `[sources.<name>]` config decides how: Standard Webhooks signature (the
source's newest secret, else the dev secret), a bearer token, or a URL token. A file
ending in .ndjson or .jsonl is sent as application/x-ndjson (a Suricata batch).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import httpx

from orchestrator.config import Settings, webhook_secret
from orchestrator.sources import resolve
from orchestrator.webhooks import sign

TIMEOUT_S = 15.0
NDJSON_SUFFIXES = (".ndjson", ".jsonl")


def _auth(
    settings: Settings, source: str, body: bytes
) -> tuple[dict[str, str], dict[str, str]] | str:
    """Headers and query parameters that authenticate as `source`, or why there are none."""
    config = resolve(settings.sources, source)
    if config.auth == "bearer":
        return {"authorization": f"Bearer {config.tokens[0].get_secret_value()}"}, {}
    if config.auth == "url-token":
        return {}, {"token": config.tokens[0].get_secret_value()}
    secret = config.secrets[0].get_secret_value() if config.secrets else webhook_secret(settings)
    if secret is None:
        return (
            f"no webhook secret: set BULKHEAD_WEBHOOK_SECRET or run `bulkhead up` with "
            f"--state-dir {settings.state_dir} first"
        )
    try:
        body.decode()
    except UnicodeDecodeError:
        return "the file is not UTF-8, so it cannot be signed (nor accepted)"
    return sign(body, secret, msg_id=f"msg_{uuid.uuid4().hex}", timestamp=int(time.time())), {}


def send(settings: Settings, source: str, path: Path, *, api_url: str | None = None) -> int:
    try:
        body = path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    auth = _auth(settings, source, body)
    if isinstance(auth, str):
        print(f"error: {auth}", file=sys.stderr)
        return 2
    headers, params = auth
    ndjson = path.suffix.lower() in NDJSON_SUFFIXES
    headers["content-type"] = "application/x-ndjson" if ndjson else "application/json"
    url = f"{api_url or settings.api_url}/v1/webhooks/{source}"
    try:
        response = httpx.post(url, content=body, headers=headers, params=params, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        message = str(exc)
        for secret in params.values():  # an error may quote the URL, which holds the token
            message = message.replace(secret, "<token>")
        print(f"error: cannot reach {url}: {message}", file=sys.stderr)
        return 1
    try:
        shown = json.dumps(response.json(), indent=2, ensure_ascii=False)
    except ValueError:
        shown = response.text
    print(shown)
    if response.status_code != 202:
        print(f"error: {url} answered {response.status_code}", file=sys.stderr)
        return 1
    return 0
