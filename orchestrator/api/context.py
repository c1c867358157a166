"""What the HTTP layer needs, built once per process and shared by the routers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from fastapi import Request
from temporalio.client import Client

from contracts.findings import FindingEnvelope
from contracts.incident import IncidentParams
from orchestrator.city.health import ServiceHealthCache
from orchestrator.city.model import CityPicture
from orchestrator.city.shared import SharedRead
from orchestrator.config import Settings
from orchestrator.ingest.coalescer import Coalescer
from orchestrator.ingest.raw_store import RawStore, raw_store
from orchestrator.ingest.signatures import RecentIds
from orchestrator.policy.base import PolicyEngine
from orchestrator.responders import grants
from orchestrator.responders.oidc import OidcVerifier
from orchestrator.responders.principals import PrincipalStore
from orchestrator.temporal.city import TemporalCity
from orchestrator.temporal.incidents import IncidentClient

# A webhook's findings must be in Temporal within this, or the sender gets a 503.
DELIVERY_TIMEOUT = timedelta(seconds=5)


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

    @cached_property
    def city_health(self) -> ServiceHealthCache:
        """Essential services' health for the city picture, probed at most every few s."""
        return ServiceHealthCache()

    @cached_property
    def city_reads(self) -> SharedRead[CityPicture]:
        """Requests for the city picture while one is being read share that read."""
        return SharedRead()

    @property
    def raw_store(self) -> RawStore:
        if self.raw is None:
            self.raw = raw_store(self.settings)
        return self.raw

    @cached_property
    def coalescer(self) -> Coalescer:
        """One call in flight per incident; findings that arrive meanwhile go together."""
        incidents = IncidentClient(self.client)

        async def send(params: IncidentParams, envelopes: list[FindingEnvelope]) -> None:
            await incidents.deliver_many(
                self.settings, params, envelopes, rpc_timeout=DELIVERY_TIMEOUT
            )

        return Coalescer(send)

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
