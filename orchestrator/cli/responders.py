"""Parsers for the responder commands: principals, approve/deny/extend/release,
automation pause|resume, audit verify. Each sets `handler(args, settings) -> int`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator.config import Settings
from orchestrator.principals import ROLES
from orchestrator.wiring import AUDIT_FILE


def _api(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--state-dir", type=Path, help="where state lives (default .bulkhead/)")
    parser.add_argument("--api-url", help="API base URL (default from settings)")
    parser.add_argument("--token", help="bearer token (default: BULKHEAD_TOKEN or `token`)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")


def _url(args: argparse.Namespace, settings: Settings) -> str:
    return str(args.api_url or settings.api_url)


def _post(args: argparse.Namespace, settings: Settings, path: str, body: dict[str, Any]) -> int:
    from orchestrator.cli import respond  # noqa: PLC0415 - keeps --help fast

    token = args.token or (settings.token.get_secret_value() if settings.token else None)
    return respond.post(_url(args, settings), path, body, token, as_json=args.json)


def _step_action(args: argparse.Namespace, settings: Settings) -> int:
    body: dict[str, Any] = {"reason": args.reason}
    if args.command == "extend":
        body = {"lease_s": args.lease_s, "reason": args.reason or ""}
    path = f"/v1/incidents/{args.incident_id}/steps/{args.step_id}/{args.command}"
    return _post(args, settings, path, body)


def _release(args: argparse.Namespace, settings: Settings) -> int:
    path = f"/v1/incidents/{args.incident_id}/release"
    return _post(args, settings, path, {"reason": args.reason})


def _automation(args: argparse.Namespace, settings: Settings) -> int:
    return _post(args, settings, f"/v1/automation/{args.change}", {"reason": args.reason})


def _principals(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.cli import principals  # noqa: PLC0415

    if args.principals_command == "add":
        return principals.add(settings, args.name, args.role)
    if args.principals_command == "rm":
        return principals.rm(settings, args.name)
    return principals.ls(settings)


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.cli import audit  # noqa: PLC0415

    if args.postgres:
        if settings.audit_postgres_dsn is None:
            print("error: --postgres needs BULKHEAD_AUDIT_POSTGRES_DSN", file=sys.stderr)
            return 2
        return audit.verify_postgres(settings.audit_postgres_dsn.get_secret_value())
    return audit.verify(args.file or settings.state_dir / AUDIT_FILE)


def register(commands: Any) -> None:
    """Add the responder commands to the `bulkhead` subcommand set."""
    for name, verb in (("approve", "approve"), ("deny", "deny")):
        parser = commands.add_parser(name, help=f"{verb} a step awaiting approval")
        _api(parser)
        parser.add_argument("incident_id")
        parser.add_argument("step_id")
        parser.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        parser.set_defaults(handler=_step_action)

    extend = commands.add_parser("extend", help="extend the lease of an applied step")
    _api(extend)
    extend.add_argument("incident_id")
    extend.add_argument("step_id")
    extend.add_argument("--lease-s", type=int, required=True, help="seconds to add")
    extend.add_argument("--reason", default="", help="why (kept in the audit trail)")
    extend.set_defaults(handler=_step_action)

    release = commands.add_parser("release", help="undo every applied step, newest first")
    _api(release)
    release.add_argument("incident_id")
    release.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    release.set_defaults(handler=_release)

    automation = commands.add_parser("automation", help="pause or resume automatic steps")
    _api(automation)
    automation.add_argument("change", choices=["pause", "resume"])
    automation.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    automation.set_defaults(handler=_automation)

    principals = commands.add_parser("principals", help="responders and their tokens")
    sub = principals.add_subparsers(dest="principals_command", required=True, metavar="COMMAND")
    add = sub.add_parser("add", help="add a principal; prints its token once")
    add.add_argument("name")
    add.add_argument(
        "--role", action="append", required=True, choices=ROLES, help="repeat for several roles"
    )
    remove = sub.add_parser("rm", help="remove a principal (its token stops working)")
    remove.add_argument("name")
    listing = sub.add_parser("ls", help="list principals")
    for parser in (add, remove, listing):
        parser.add_argument("--config", type=Path, help="TOML settings file")
        parser.add_argument("--state-dir", type=Path, help="state dir holding principals.json")
        parser.set_defaults(handler=_principals)

    audit = commands.add_parser("audit", help="the exported audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit_sub.add_parser("verify", help="check the hash chains of an audit JSONL file")
    verify.add_argument(
        "file", nargs="?", type=Path, help="audit JSONL (default <state-dir>/audit.jsonl)"
    )
    verify.add_argument("--config", type=Path, help="TOML settings file")
    verify.add_argument("--state-dir", type=Path, help="state dir holding audit.jsonl")
    verify.add_argument(
        "--postgres", action="store_true", help="check the PostgreSQL copy (audit_postgres_dsn)"
    )
    verify.set_defaults(handler=_audit)
