"""Prometheus metrics: one registry per app, served at GET /metrics.

A per-app `CollectorRegistry` (not prometheus-client's global one) lets tests build many
apps in one process without "duplicated timeseries" errors, and keeps each app's counts
its own. To add a metric, add an attribute in `Metrics.__init__` registered on
`self.registry`; routers reach the instance through `metrics_of(request)`.

Label values are bounded sets (known sources, fixed outcomes): a label taken from a
request as is would let any client create time series without limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# Webhook request latency: the 202 waits for Temporal, so the buckets reach seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
UNKNOWN_SOURCE = "unknown"  # the `source` label of a request to a source nobody configured


class Metrics:
    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        also: Sequence[CollectorRegistry] = (),
    ) -> None:
        self.registry = registry or CollectorRegistry()
        # Registries served alongside: the worker's, when it runs in this process (`up`).
        self.also = list(also)
        self.webhook_requests = Counter(
            "bulkhead_webhook_requests",
            "Webhook requests by source and outcome (accepted, partial, ignored, duplicate, "
            "unauthorized, forbidden, not_found, too_large, unsupported_media_type, "
            "malformed, invalid, unavailable, error).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.webhook_latency = Histogram(
            "bulkhead_webhook_request_duration_seconds",
            "Time from a webhook request's arrival to its response, by source.",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.findings_per_signal = Histogram(
            "bulkhead_findings_per_signal",
            "Findings carried by each signal-with-start to an incident: above 1 when "
            "findings for one incident arrive together and are coalesced.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return b"".join(generate_latest(r) for r in (self.registry, *self.also))


router = APIRouter(tags=["operations"])

EXAMPLE = """\
# HELP bulkhead_webhook_requests_total Webhook requests by source and outcome.
# TYPE bulkhead_webhook_requests_total counter
bulkhead_webhook_requests_total{outcome="accepted",source="splunk"} 12.0
bulkhead_webhook_requests_total{outcome="unauthorized",source="splunk"} 1.0
"""


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Counters and histograms in the Prometheus text exposition format.",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": EXAMPLE}},
        }
    },
)
async def metrics(request: Request) -> Response:
    return Response((await metrics_of(request)).exposition(), media_type=CONTENT_TYPE_LATEST)


async def metrics_of(request: Request) -> Metrics:
    """A dependency; async so FastAPI does not hop to a worker thread for an attribute."""
    found: Metrics = request.app.state.metrics
    return found


def install(app: FastAPI, metrics: Metrics | None = None, *, guard: Sequence[Any] = ()) -> Metrics:
    """Give the app its registry and the /metrics route, behind `guard` dependencies."""
    app.state.metrics = metrics or Metrics()
    app.include_router(router, dependencies=list(guard))
    installed: Metrics = app.state.metrics
    return installed
