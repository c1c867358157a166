"""`bulkhead status`: the city right now, from `GET /v1/city` (viewer or higher).

Automation (and who paused it, and why), the blast-radius budget, each zone's state, what
is contained where with its lease countdown, approvals pending and overdue, and recently
escalated or released incidents. It fits a 100-column terminal; `--json` prints the
API's answer. Only registration and the call live here; the printing is status_view.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from orchestrator.cli import options
from orchestrator.cli.client import EXIT_API_FAILED, Api, Failure, reports_failures
from orchestrator.cli.client import require_credential as credential_for
from orchestrator.config import Settings

TIMEOUT_S = 15.0


def register(commands: Any) -> None:
    status = commands.add_parser(
        "status",
        help="the city right now: automation, containments per zone, approvals",
        description="What a duty officer needs right now, from GET /v1/city: automation "
        "(who paused it and why), what is contained per zone with lease countdowns, "
        "pending and overdue approvals, recently escalated or released incidents. "
        "Times are UTC.",
    )
    status.add_argument("--config", type=Path, help="TOML settings file")
    status.add_argument("--state-dir", type=Path, help="where state lives (default .bulkhead/)")
    status.add_argument("--api-url", help="API base URL (default from settings)")
    status.add_argument(
        "--token",
        help="bearer token (default: BULKHEAD_TOKEN or `token` setting, then the local "
        "operator credential of `bulkhead up`)",
    )
    status.add_argument("--json", action="store_true", help="print the API's JSON answer")
    options.api_client(status)
    status.set_defaults(handler=_status)


@reports_failures
def _status(args: argparse.Namespace, settings: Settings) -> int:
    found = credential_for(args.token, settings, read=True, action="read the city")
    api = Api(str(args.api_url or settings.api_url), found, TIMEOUT_S)
    body = api.get("/v1/city")
    if not isinstance(body, dict) or not isinstance(body.get("zones"), list):
        raise Failure(EXIT_API_FAILED, f"{api.url} answered without a city picture")
    if args.json:
        from orchestrator.cli import render  # noqa: PLC0415 - keeps --help fast

        render.print_json(body)
        return 0
    from orchestrator.cli import status_view  # noqa: PLC0415 - keeps --help fast

    status_view.show(body)
    return 0
