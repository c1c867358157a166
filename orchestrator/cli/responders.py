"""Parsers for the responder commands: principals, approve/deny/extend/release,
automation pause|resume, audit verify, and the handlers of `incidents ls|show`. Each sets
`handler(args, settings) -> int`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator.cli import options, playbook
from orchestrator.cli.client import Api, path_segment, reports_failures, require_credential
from orchestrator.cli.durations import ACCEPTED, duration
from orchestrator.config import Settings
from orchestrator.responders.principals import ROLES

# contracts.incident.IncidentStatus's values, spelled out: importing it builds every
# incident model, which would cost each command (issue #18). A test keeps them equal.
INCIDENT_STATUSES = (
    "open",
    "awaiting_approval",
    "containing",
    "contained",
    "released",
    "escalated",
    "failed",
    "closed",
)


def token_flag(parser: argparse.ArgumentParser, *, read: bool = False) -> None:
    fallback = ", then the local operator credential of `bulkhead up`" if read else ""
    parser.add_argument(
        "--token", help=f"bearer token (default: BULKHEAD_TOKEN or `token` setting{fallback})"
    )


def _api(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--state-dir", type=Path, help="where state lives (default .bulkhead/)")
    parser.add_argument("--api-url", help="API base URL (default from settings)")
    token_flag(parser)
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")
    options.api_client(parser)


def _connect(args: argparse.Namespace, settings: Settings, *, read: bool, timeout_s: float) -> Api:
    """The API with the token this command may use; `Failure` (exit 2) when there is none."""
    action = "read incidents" if read else getattr(args, "change", None) or args.command
    found = require_credential(args.token, settings, read=read, action=action)
    return Api(str(args.api_url or settings.api_url), found, timeout_s)


@reports_failures
def _post(
    args: argparse.Namespace,
    settings: Settings,
    path: str,
    body: dict[str, Any],
    *,
    incident_id: str | None = None,
) -> int:
    from orchestrator.cli import respond  # noqa: PLC0415 - keeps --help fast

    api = _connect(args, settings, read=False, timeout_s=respond.TIMEOUT_S)
    return respond.post(api, path, body, incident_id=incident_id, as_json=args.json)


def _step_action(args: argparse.Namespace, settings: Settings) -> int:
    body: dict[str, Any] = {"reason": args.reason}
    if args.command == "extend":
        body = {"lease_s": args.lease_s, "reason": args.reason or ""}
    incident, step = path_segment(args.incident_id), path_segment(args.step_id)
    path = f"/v1/incidents/{incident}/steps/{step}/{args.command}"
    return _post(args, settings, path, body, incident_id=args.incident_id)


@reports_failures
def _release(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.cli import releasing, respond  # noqa: PLC0415 - keeps --help fast

    api = _connect(args, settings, read=False, timeout_s=respond.TIMEOUT_S)
    return releasing.release(
        api,
        args.incident_id,
        step_id=args.step,
        reason=args.reason,
        yes=args.yes,
        as_json=args.json,
    )


def _automation(args: argparse.Namespace, settings: Settings) -> int:
    return _post(args, settings, f"/v1/automation/{args.change}", {"reason": args.reason})


@reports_failures
def list_incidents(args: argparse.Namespace, settings: Settings) -> int:
    """`incidents ls`; a read, so the local operator credential will do."""
    from orchestrator.cli import incidents  # noqa: PLC0415 - keeps --help fast

    api = _connect(args, settings, read=True, timeout_s=incidents.TIMEOUT_S)
    filters = {
        "status": args.status,
        "zone": args.zone,
        "severity": args.severity,
        "awaiting_approval": args.awaiting_approval,
    }
    return incidents.ls(api, as_json=args.json, filters=filters)


@reports_failures
def show_incident(args: argparse.Namespace, settings: Settings) -> int:
    """`incidents show ID`; a read, so the local operator credential will do."""
    from orchestrator.cli import incidents  # noqa: PLC0415 - keeps --help fast

    api = _connect(args, settings, read=True, timeout_s=incidents.TIMEOUT_S)
    return incidents.show(api, args.incident_id, as_json=args.json)


def _principals(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.cli import principals  # noqa: PLC0415

    if args.principals_command == "add":
        return principals.add(settings, args.name, args.role)
    if args.principals_command == "rm":
        return principals.rm(settings, args.name)
    return principals.ls(settings)


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.audit.keys import AuditKeyError, audit_key, read_key_file  # noqa: PLC0415
    from orchestrator.cli import audit  # noqa: PLC0415
    from orchestrator.wiring.worker import AUDIT_FILE  # noqa: PLC0415 - imports every adapter: slow

    dsn: str | None = None
    if args.postgres:
        if settings.audit_postgres_dsn is None:
            print("error: --postgres needs BULKHEAD_AUDIT_POSTGRES_DSN", file=sys.stderr)
            return 2
        dsn = settings.audit_postgres_dsn.get_secret_value()
    try:
        key = read_key_file(args.key_file) if args.key_file else audit_key(settings)
    except (AuditKeyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    request = audit.VerifyRequest(
        file=args.file or settings.state_dir / AUDIT_FILE,
        file_named=args.file is not None,
        key=key,
        postgres_dsn=dsn,
        allow_unkeyed=args.allow_unkeyed,
        as_json=args.json,
    )
    return audit.verify(request)


def register(commands: Any) -> None:
    """Add the responder commands to the `bulkhead` subcommand set."""
    _register_incidents(commands)
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
    extend.add_argument(
        "--lease-s",
        "--lease",
        dest="lease_s",
        type=duration,
        required=True,
        metavar="DURATION",
        help=f"time to add to the lease: {ACCEPTED}",
    )
    extend.add_argument("--reason", default="", help="why (kept in the audit trail)")
    extend.set_defaults(handler=_step_action)

    release = commands.add_parser(
        "release",
        help="undo every applied step, newest first (or one step: --step); says what first",
    )
    _api(release)
    release.add_argument("incident_id")
    release.add_argument("--step", help="release only this step; the others stay")
    release.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    release.add_argument(
        "--yes", action="store_true", help="do not ask at a terminal before releasing"
    )
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

    _register_audit(commands)


def _register_audit(commands: Any) -> None:
    """`bulkhead audit verify`: the trail against its checkpoints and anchors."""
    audit = commands.add_parser("audit", help="the exported audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit_sub.add_parser(
        "verify",
        help="check the audit trail's chains and compare it with its checkpoints and anchors",
    )
    verify.add_argument(
        "file", nargs="?", type=Path, help="audit JSONL (default <state-dir>/audit.jsonl)"
    )
    verify.add_argument("--config", type=Path, help="TOML settings file")
    verify.add_argument("--state-dir", type=Path, help="state dir holding audit.jsonl, audit-key")
    verify.add_argument(
        "--postgres",
        action="store_true",
        help="compare with the PostgreSQL copy (audit_postgres_dsn); alone when no file",
    )
    verify.add_argument(
        "--key-file",
        type=Path,
        help="the audit key (default BULKHEAD_AUDIT_KEY, <state-dir>/audit-key)",
    )
    verify.add_argument(
        "--allow-unkeyed",
        action="store_true",
        help="exit 0 on intact chains sealed before the audit key (still reported)",
    )
    verify.add_argument("--json", action="store_true", help="print the findings as JSON")
    verify.set_defaults(handler=_audit)


def _register_incidents(commands: Any) -> None:
    incidents = commands.add_parser("incidents", help="list or show incidents")
    incident_commands = incidents.add_subparsers(
        dest="incidents_command", required=True, metavar="COMMAND"
    )
    ls = incident_commands.add_parser("ls", help="list open incidents")
    options.common(ls)
    ls.add_argument("--api-url", help="API base URL (default from settings)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--status", choices=INCIDENT_STATUSES, help="only this status")
    ls.add_argument("--zone", help="only incidents touching this zone")
    ls.add_argument("--severity", type=int, help="only incidents at or above this severity_id")
    ls.add_argument(
        "--awaiting",
        dest="awaiting_approval",
        action="store_const",
        const="true",
        help="only incidents with a step waiting for a person",
    )
    token_flag(ls, read=True)
    options.api_client(ls)
    ls.set_defaults(handler=list_incidents)
    show = incident_commands.add_parser("show", help="show one incident")
    options.common(show)
    show.add_argument("incident_id")
    show.add_argument("--api-url", help="API base URL (default from settings)")
    show.add_argument("--json", action="store_true", help="print JSON")
    token_flag(show, read=True)
    options.api_client(show)
    show.set_defaults(handler=show_incident)
    playbook.register_export(incident_commands)
