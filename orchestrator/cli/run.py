"""`bulkhead up`, `bulkhead api`, `bulkhead worker`: what they take on the command line.

Only registration lives here; the parts they run load when a command runs, so
`bulkhead --help` stays fast (orchestrator/cli/serve.py, up.py).
"""

from __future__ import annotations

import argparse
from typing import Any

from orchestrator.cli import options
from orchestrator.cli.lab import lab_help
from orchestrator.config import Settings


def _ports_help() -> str:
    fields = Settings.model_fields
    api = fields["api_port"].default
    temporal = str(fields["temporal_address"].default).rpartition(":")[2]
    return f"Bulkhead's own: API port {api} (--api-port), Temporal {temporal} (--temporal-port)"


def register(commands: Any) -> None:
    up = commands.add_parser(
        "up",
        help="run everything locally: Temporal dev server, worker, API and the lab",
        epilog=f"{lab_help()}\n{_ports_help()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the port table
    )
    options.common(up)
    options.api_port(up)
    up.add_argument("--temporal-port", type=int, help="dev server gRPC port (default 7233)")
    up.add_argument("--no-lab", action="store_true", help="do not start the lab simulators")
    up.set_defaults(handler=_up)

    api = commands.add_parser("api", help="run the HTTP API against an existing Temporal")
    options.common(api)
    options.api_port(api)
    options.temporal(api)
    api.set_defaults(handler=_api)

    worker = commands.add_parser("worker", help="run a worker against an existing Temporal")
    options.common(worker)
    options.temporal(worker)
    worker.set_defaults(handler=_worker)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.cli import up  # noqa: PLC0415 - keeps --help fast

    return up.up(settings, with_lab=not args.no_lab)


def _api(_args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.cli import serve  # noqa: PLC0415 - keeps --help fast

    return serve.api(settings)


def _worker(_args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.cli import serve  # noqa: PLC0415 - keeps --help fast

    return serve.worker(settings)
