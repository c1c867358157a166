"""CACAO 2.0 playbooks on the command line (docs/STANDARDS.md).

`bulkhead playbook check FILE`: one line per problem, `pointer: why`; exit 0 when the
playbook is valid, 1 when it is not (or is not JSON), 2 when the file cannot be read.
`bulkhead incidents export --cacao ID`: the incident's containment as a playbook, from
`GET /v1/incidents/{id}/cacao` (a read: the local operator credential will do).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.cli import options
from orchestrator.cli.client import (
    EXIT_API_FAILED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Api,
    Failure,
    path_segment,
    reports_failures,
    require_credential,
)
from orchestrator.config import Settings

TIMEOUT_S = 15.0


def check_file(path: Path) -> int:
    """Print the problems of the playbook in `path`; its exit code."""
    from orchestrator.standards.cacao_check import check  # noqa: PLC0415 - keeps --help fast

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"(document): not JSON: {exc}")
        return EXIT_FAILED
    problems = check(document)
    for problem in problems:
        print(problem.line())
    if problems:
        print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
        return EXIT_FAILED
    steps = len(document["workflow"])
    print(f"{path}: a valid CACAO 2.0 playbook ({steps} workflow steps)")
    return EXIT_OK


def _check(args: argparse.Namespace, settings: Settings) -> int:
    del settings  # a file on disk: no API, no state
    return check_file(args.file)


@reports_failures
def _export(args: argparse.Namespace, settings: Settings) -> int:
    found = require_credential(args.token, settings, read=True, action="read incidents")
    api = Api(str(args.api_url or settings.api_url), found, TIMEOUT_S)
    body = api.get(f"/v1/incidents/{path_segment(args.incident_id)}/cacao")
    if not isinstance(body, dict) or body.get("type") != "playbook":
        raise Failure(EXIT_API_FAILED, f"{api.url} answered without a CACAO playbook")
    text = json.dumps(body, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def register(commands: Any) -> None:
    """Add `playbook check` to the `bulkhead` subcommand set."""
    playbook = commands.add_parser("playbook", help="CACAO 2.0 playbooks")
    sub = playbook.add_subparsers(dest="playbook_command", required=True, metavar="COMMAND")
    check = sub.add_parser(
        "check",
        help="check a CACAO 2.0 playbook: one line per problem (exit 1), 2 if unreadable",
    )
    check.add_argument("file", type=Path, metavar="FILE", help="the playbook (JSON)")
    options.common(check)
    check.set_defaults(handler=_check)


def register_export(incident_commands: Any) -> None:
    """Add `incidents export --cacao ID` next to `incidents ls|show`."""
    export = incident_commands.add_parser(
        "export", help="an incident's containment in an open format"
    )
    options.common(export)
    formats = export.add_mutually_exclusive_group(required=True)
    formats.add_argument(
        "--cacao", dest="incident_id", metavar="ID", help="as a CACAO 2.0 playbook (JSON)"
    )
    export.add_argument("--api-url", help="API base URL (default from settings)")
    export.add_argument(
        "--token",
        help="bearer token (default: BULKHEAD_TOKEN or `token` setting, then the local "
        "operator credential of `bulkhead up`)",
    )
    export.add_argument("-o", "--output", type=Path, help="write to FILE, not stdout")
    export.set_defaults(handler=_export)
