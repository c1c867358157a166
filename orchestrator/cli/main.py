"""The `bulkhead` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contracts.incident import IncidentStatus
from orchestrator import logs
from orchestrator.cli import adapters, policy, responders
from orchestrator.cli.client import EXIT_CODES_HELP
from orchestrator.config import Settings, load_settings


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file (keys as in Settings)")
    parser.add_argument("--state-dir", type=Path, help="where state lives (default .bulkhead/)")


def _temporal(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--temporal-address", help="host:port of Temporal (default 127.0.0.1:7233)")
    parser.add_argument("--namespace", dest="temporal_namespace", help="Temporal namespace")
    parser.add_argument(
        "--tls",
        dest="temporal_tls",
        action="store_true",
        default=None,
        help="connect to Temporal over TLS",
    )
    parser.add_argument("--tls-ca", dest="temporal_tls_ca", type=Path, help="CA bundle (PEM)")
    parser.add_argument("--tls-cert", dest="temporal_tls_cert", type=Path, help="client cert")
    parser.add_argument("--tls-key", dest="temporal_tls_key", type=Path, help="client key")


def _api_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-port", type=int, help="HTTP port of the API (default 8080)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bulkhead",
        description="Policy-driven containment orchestrator.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the exit code table
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="run everything locally: Temporal dev server, worker, API and the lab"
    )
    _common(up)
    _api_port(up)
    up.add_argument("--temporal-port", type=int, help="dev server gRPC port (default 7233)")
    up.add_argument("--no-lab", action="store_true", help="do not start the lab simulators")

    api = commands.add_parser("api", help="run the HTTP API against an existing Temporal")
    _common(api)
    _api_port(api)
    _temporal(api)

    worker = commands.add_parser("worker", help="run a worker against an existing Temporal")
    _common(worker)
    _temporal(worker)

    lab = commands.add_parser("lab", help="the local lab of simulated city devices")
    lab_commands = lab.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")
    lab_up = lab_commands.add_parser("up", help="run the lab simulators in the foreground")
    _common(lab_up)

    send = commands.add_parser("send", help="sign and post a finding payload to the API")
    _common(send)
    send.add_argument("source", help="webhook source, e.g. generic")
    send.add_argument("file", type=Path, help="JSON payload to send")
    send.add_argument("--api-url", help="API base URL (default from settings)")

    incidents = commands.add_parser("incidents", help="list or show incidents")
    incident_commands = incidents.add_subparsers(
        dest="incidents_command", required=True, metavar="COMMAND"
    )
    ls = incident_commands.add_parser("ls", help="list open incidents")
    _common(ls)
    ls.add_argument("--api-url", help="API base URL (default from settings)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--status", choices=[s.value for s in IncidentStatus], help="only this status")
    ls.add_argument("--zone", help="only incidents touching this zone")
    ls.add_argument("--severity", type=int, help="only incidents at or above this severity_id")
    ls.add_argument(
        "--awaiting",
        dest="awaiting_approval",
        action="store_const",
        const="true",
        help="only incidents with a step waiting for a person",
    )
    responders.token_flag(ls, read=True)
    ls.set_defaults(handler=responders.list_incidents)
    show = incident_commands.add_parser("show", help="show one incident")
    _common(show)
    show.add_argument("incident_id")
    show.add_argument("--api-url", help="API base URL (default from settings)")
    show.add_argument("--json", action="store_true", help="print JSON")
    responders.token_flag(show, read=True)
    show.set_defaults(handler=responders.show_incident)
    responders.register(commands)
    adapters.register(commands)
    policy.register(commands, _common)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        key: getattr(args, key, None)
        for key in (
            "state_dir",
            "api_port",
            "temporal_address",
            "temporal_namespace",
            "temporal_tls",
            "temporal_tls_ca",
            "temporal_tls_cert",
            "temporal_tls_key",
        )
    }
    if getattr(args, "temporal_port", None):
        overrides["temporal_address"] = f"127.0.0.1:{args.temporal_port}"
    return load_settings(args.config, **overrides)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    handler = getattr(args, "handler", None)
    if handler is not None:
        result: int = handler(args, settings)
        return result
    from orchestrator.cli import send, serve, up  # noqa: PLC0415 - keeps --help fast

    api_url = getattr(args, "api_url", None) or settings.api_url
    handlers: dict[str, Callable[[], int]] = {
        "up": lambda: up.up(settings, with_lab=not args.no_lab),
        "api": lambda: serve.api(settings),
        "worker": lambda: serve.worker(settings),
        "lab": lambda: serve.lab_up(settings),
        "send": lambda: send.send(settings, args.source, args.file, api_url=api_url),
    }
    return handlers[args.command]()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except (ValidationError, FileNotFoundError) as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        return _dispatch(args, settings)
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
