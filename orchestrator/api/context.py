"""What the HTTP layer needs, built once per process and shared by the routers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from fastapi import Request
from temporalio.client import Client

from orchestrator.config import Settings
from orchestrator.ingest.raw_store import RawStore, raw_store
from orchestrator.ingest.signatures import RecentIds
from orchestrator.policy.base import PolicyEngine
from orchestrator.responders import grants
from orchestrator.responders.oidc import OidcVerifier
from orchestrator.responders.principals import PrincipalStore
from orchestrator.temporal.city import TemporalCity


@dataclass
class ApiContext:
    settings: Settings
    client: Client
    engine: PolicyEngine | None
    webhook_secrets: dict[str, list[str]]
    principals: PrincipalStore
    city: TemporalCity
    recent_webhook_ids: RecentIds = field(default_factory=RecentIds)
    oidc: OidcVerifier | None = None
    raw: RawStore | None = None  # raw SIEM payloads; the configured store on first use

    @cached_property
    def approval_key(self) -> bytes:
        """The key responder grants are MAC'd with (shared with the workers)."""
        return grants.approval_key(self.settings)

    @property
    def raw_store(self) -> RawStore:
        if self.raw is None:
            self.raw = raw_store(self.settings)
        return self.raw

    def secrets_for(self, source: str) -> list[str]:
        return self.webhook_secrets.get(source) or self.webhook_secrets.get("*", [])


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


def build_context(
    settings: Settings, client: Client, engine: PolicyEngine | None, webhook_secret: str
) -> ApiContext:
    """The context every process serving the API builds the same way."""
    return ApiContext(
        settings=settings,
        client=client,
        engine=engine,
        webhook_secrets={"*": [webhook_secret]},
        principals=PrincipalStore(settings.principals_path),
        city=TemporalCity(client, settings),
        oidc=OidcVerifier.from_settings(settings),
    )
