"""Flags several commands share, so each command module registers itself the same way."""

from __future__ import annotations

import argparse
from pathlib import Path


def common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file (keys as in Settings)")
    parser.add_argument("--state-dir", type=Path, help="where state lives (default .bulkhead/)")


def temporal(parser: argparse.ArgumentParser) -> None:
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


def api_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-port", type=int, help="HTTP port of the API (default 8080)")


def api_client(parser: argparse.ArgumentParser) -> None:
    """Mark a command that only calls the API: `main` then leaves structlog unconfigured.

    Importing structlog (it pulls in rich's tracebacks) was a large share of such a
    command's run, and nothing on its path logs through structlog (tests/orchestrator/
    cli/test_lazy_imports.py proves it is never imported), so there is nothing to set up.
    """
    parser.set_defaults(structured_logs=False)
