"""`bulkhead send SOURCE FILE`: post a payload the way that SIEM would, with its auth.

The source's `[sources.<name>]` config decides how: Standard Webhooks signature (the
source's newest secret, else the dev secret), a bearer token, or a URL token. A file
ending in .ndjson or .jsonl is sent as application/x-ndjson (a Suricata batch).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path
from typing import Any

from orchestrator.cli import options
from orchestrator.cli.client import (
    EXIT_USAGE,
    Failure,
    answer_json,
    path_segment,
    reports_failures,
    request,
)
from orchestrator.config import Settings, webhook_secret
from orchestrator.ingest.signatures import sign
from orchestrator.ingest.sources import resolve

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


@reports_failures
def send(settings: Settings, source: str, path: Path, *, api_url: str | None = None) -> int:
    """Post the file; print the API's 202 answer (findings, rejected, ignored alerts)."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise Failure(EXIT_USAGE, f"cannot read {path}: {exc.strerror}") from None
    auth = _auth(settings, source, body)
    if isinstance(auth, str):
        raise Failure(EXIT_USAGE, auth)
    headers, params = auth
    ndjson = path.suffix.lower() in NDJSON_SUFFIXES
    headers["content-type"] = "application/x-ndjson" if ndjson else "application/json"
    base = (api_url or settings.api_url).rstrip("/")
    url = f"{base}/v1/webhooks/{path_segment(source)}"
    response = request(
        "POST",
        url,
        timeout_s=TIMEOUT_S,
        redact=params.values(),  # an error may quote the URL, which holds the URL token
        content=body,
        headers=headers,
        params=params,
    )
    print(json.dumps(answer_json(response), indent=2, ensure_ascii=False))
    return 0


def register(commands: Any) -> None:
    parser = commands.add_parser("send", help="sign and post a finding payload to the API")
    options.common(parser)
    parser.add_argument("source", help="webhook source, e.g. generic")
    parser.add_argument("file", type=Path, help="JSON payload to send")
    parser.add_argument("--api-url", help="API base URL (default from settings)")
    options.api_client(parser)
    parser.set_defaults(handler=_send)


def _send(args: argparse.Namespace, settings: Settings) -> int:
    return send(settings, args.source, args.file, api_url=args.api_url or settings.api_url)
