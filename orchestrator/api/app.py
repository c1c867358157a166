"""The FastAPI application: webhooks in, incidents out, problem+json for every error."""

from __future__ import annotations

from fastapi import Depends

from orchestrator import metrics
from orchestrator.api import (
    actions,
    cacao,
    city,
    health,
    incidents,
    openapi,
    openc2,
    policy,
    problems,
    webhooks,
)
from orchestrator.api.access import metrics_caller
from orchestrator.api.context import ApiContext
from orchestrator.api.front import BulkheadApi, webhook_entry
from orchestrator.api.limits import RequestLimits
from orchestrator.console import router as console_router
from orchestrator.ingest.connectors import CONNECTORS

DESCRIPTION = """\
SIEMs post findings to `POST /v1/webhooks/{source}`; Rego policies decide what to contain
and who must approve; Temporal workflows carry the containment out. Responders approve,
deny, extend and release steps with a bearer token. Every error is an RFC 9457
`application/problem+json` document.
"""

TAGS = [
    {"name": "webhooks", "description": "Findings in, from each SIEM (docs/SIEMS.md)"},
    {"name": "operations", "description": "Health, readiness and Prometheus metrics"},
]


def check_sources(context: ApiContext) -> None:
    """Fail at startup on a `[sources.<name>]` table no connector answers to (a typo)."""
    unknown = sorted(set(context.settings.sources) - set(CONNECTORS))
    if unknown:
        raise ValueError(
            f"config names unknown webhook source(s) {unknown}; known: {sorted(CONNECTORS)}"
        )


def create_app(context: ApiContext, metrics_registry: metrics.Metrics | None = None) -> BulkheadApi:
    check_sources(context)
    app = BulkheadApi(
        title="Bulkhead",
        version="0.1.0",
        summary="Policy-driven containment for city infrastructure",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        # Swagger UI and ReDoc load their scripts from a public CDN: off unless asked for.
        docs_url="/docs" if context.settings.api_docs else None,
        redoc_url="/redoc" if context.settings.api_docs else None,
    )
    app.state.context = context
    app.add_middleware(
        RequestLimits,
        max_body_bytes=context.settings.max_body_bytes,
        body_timeout_s=context.settings.http_body_timeout_s,
    )
    problems.install(app)
    registry = metrics.install(app, metrics_registry, guard=[Depends(metrics_caller)])
    context.coalescer.observe = registry.findings_per_signal.observe
    app.include_router(health.router)
    app.include_router(webhooks.router)
    app.include_router(incidents.router)
    app.include_router(cacao.router)
    app.include_router(openc2.router)
    app.include_router(actions.router)
    app.include_router(policy.router)
    app.include_router(city.router)
    app.include_router(console_router)
    openapi.install(app)
    app.webhook_entry = webhook_entry(context.settings)
    return app
