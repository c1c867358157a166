"""The `bulkhead` command."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError

from orchestrator import logs
from orchestrator.cli import adapters, lab, playbook, policy, responders, run, send, status
from orchestrator.cli.client import EXIT_CODES_HELP
from orchestrator.config import Settings, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bulkhead",
        description="Policy-driven containment orchestrator.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the exit code table
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run.register(commands)
    lab.register(commands)
    send.register(commands)

    responders.register(commands)
    status.register(commands)
    adapters.register(commands)
    policy.register(commands)
    playbook.register(commands)
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
    result: int = args.handler(args, settings)
    return result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except (ValidationError, FileNotFoundError) as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, structured=getattr(args, "structured_logs", True))
    try:
        return _dispatch(args, settings)
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
