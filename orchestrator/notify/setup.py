"""The worker's notifier, from settings (None when notify_urls is empty)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from temporalio.client import Client

from orchestrator.config import Settings
from orchestrator.notify.channels import channels_of
from orchestrator.notify.lookup import IncidentFacts
from orchestrator.notify.notifier import Notifier
from orchestrator.policy.base import PolicyEngine
from orchestrator.temporal.city import TemporalCity


def notifier(
    settings: Settings,
    client: Client,
    engine: PolicyEngine,
    *,
    audit_path: Path,
    registry: CollectorRegistry | None = None,
) -> Notifier | None:
    """Raises ChannelError on a URL Apprise cannot use: a worker that would page nobody
    should not start as if it would."""
    if not settings.notify_urls:
        return None
    # Prepared by run() once this worker leads (events/leader.py), not here.
    return Notifier(
        audit_path=audit_path,
        state_dir=settings.state_dir,
        channels=channels_of(settings.notify_urls),
        engine=engine,
        lookup=IncidentFacts(client),
        public_url=settings.console_base_url,
        registry=registry,
        city=TemporalCity(client, settings),
    )
