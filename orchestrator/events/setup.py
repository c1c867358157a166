"""The event sender of a worker, from settings (None when no sink is configured)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from temporalio.client import Client

from orchestrator.audit.keys import audit_key
from orchestrator.config import Settings
from orchestrator.events.lookup import IncidentLookup
from orchestrator.events.outbox import Outbox
from orchestrator.events.sender import EventSender, Pacing
from orchestrator.events.sinks import Sink, SyslogSink, WebhookSink

EVENTS_DIR = "events"


def sinks_of(settings: Settings) -> list[Sink]:
    """Raises ValueError on a sink configured halfway (a URL without its secret)."""
    sinks: list[Sink] = []
    if settings.events_webhook_url:
        secret = settings.events_webhook_secret
        if secret is None:
            raise ValueError("events_webhook_url is set: set events_webhook_secret to sign it")
        sinks.append(WebhookSink(settings.events_webhook_url, secret.get_secret_value()))
    if settings.events_syslog_address:
        sinks.append(
            SyslogSink(
                settings.events_syslog_address,
                tls=settings.events_syslog_tls,
                ca_file=settings.events_syslog_tls_ca,
            )
        )
    return sinks


def event_sender(
    settings: Settings,
    client: Client,
    *,
    audit_path: Path,
    registry: CollectorRegistry | None = None,
    pacing: Pacing | None = None,
) -> EventSender | None:
    sinks = sinks_of(settings)
    if not sinks:
        return None
    key = audit_key(settings, create=True)
    assert key is not None  # noqa: S101 - create=True always yields one
    # Not prepared here: run() reads the queues and the cursor once this worker leads
    # (events/leader.py); a standby reading them now would race the leader's deletes.
    return EventSender(
        audit_path=audit_path,
        outbox=Outbox(settings.state_dir / EVENTS_DIR, [s.name for s in sinks]),
        sinks=sinks,
        lookup=IncidentLookup(client),
        id_key=key,
        registry=registry,
        pacing=pacing,
    )
