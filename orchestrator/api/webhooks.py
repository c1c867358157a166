"""POST /v1/webhooks/{source}: authenticate, normalize, and durably hand findings to Temporal.

Checks run cheapest and least revealing first: unknown source (404), client address
(403), size (413), content type (415), authentication (401). Only an authentic body is
parsed (400), held to the depth and array limits (422) and normalized alert by alert: a
payload whose every alert is bad is a 422 naming each field, one with some good alerts
is a 202 listing the accepted, rejected and skipped ones. A redelivery (same webhook id)
is answered as a duplicate and starts nothing. The 202 comes only after Temporal has
accepted every finding; otherwise 503 + Retry-After, and the redelivery is safe because
the workflow drops a finding it has seen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Request, Response

from contracts.findings import Finding, FindingEnvelope
from contracts.incident import IncidentParams
from orchestrator.api import payload, webhook_docs
from orchestrator.api.body import JSON_TYPES, read_limited
from orchestrator.api.context import ApiContext
from orchestrator.api.problems import RETRY_AFTER_S, Problem
from orchestrator.api.webhook_docs import (
    WebhookAccepted,
    WebhookFinding,
    WebhookIgnored,
    WebhookRejected,
)
from orchestrator.ingest import raw_store, sources
from orchestrator.ingest.connectors import CONNECTORS
from orchestrator.ingest.connectors.base import Connector, FieldError, Item
from orchestrator.ingest.entity import entity_of, incident_id_for
from orchestrator.metrics import UNKNOWN_SOURCE, Metrics
from orchestrator.temporal.errors import Unavailable

log = structlog.get_logger(__name__)
router = APIRouter(tags=["webhooks"])
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})
DELIVERY_CONCURRENCY = 16  # incidents signalled at once for one many-alert payload

# Metric outcome of each error status; the labels are a fixed set.
OUTCOMES = {
    400: "malformed",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}


class LogThrottle:
    """At most one log line per key and interval; the next one says how many it skipped.

    A flood of forged requests must not become a flood of log lines (the metrics count
    every one): the first rejection is logged at once, repeats once per interval.
    """

    def __init__(self, interval_s: float = 10.0, max_keys: int = 1024) -> None:
        self._interval_s = interval_s
        self._max_keys = max_keys
        self._state: dict[str, tuple[float, int]] = {}  # key -> (last logged, skipped since)

    def admit(self, key: str) -> int | None:
        """The number of lines skipped before this one if it is to be logged, else None."""
        now = time.monotonic()
        last, skipped = self._state.get(key, (float("-inf"), 0))
        if now - last < self._interval_s:
            self._state[key] = (last, skipped + 1)
            return None
        if key not in self._state and len(self._state) >= self._max_keys:
            self._state.clear()  # bounded memory; losing the counts only costs log lines
        self._state[key] = (now, 0)
        return skipped


_rejections = LogThrottle()


def _log_rejection(source: str, status: int, reason: str) -> None:
    # The reason names the failed check, never a secret, a token or a signature.
    skipped = _rejections.admit(f"{source}:{status}")
    if skipped is not None:
        log.info("webhook.rejected", source=source, status=status, reason=reason, skipped=skipped)


def _media_type(request: Request, connector: Connector) -> bool:
    """Whether the body is NDJSON; 415 when it is neither JSON nor a batch this source takes."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in JSON_TYPES:
        return False
    if connector.ndjson and media_type in NDJSON_TYPES:
        return True
    accepted = sorted(JSON_TYPES | (NDJSON_TYPES if connector.ndjson else frozenset()))
    raise Problem(
        415,
        f"content type {media_type or '(none)'!r} is not accepted by source "
        f"{connector.source!r}; send {' or '.join(accepted)}",
        accepted=accepted,
    )


def _authenticate(
    request: Request, context: ApiContext, source: str, config: sources.SourceConfig, body: bytes
) -> str:
    try:
        return sources.authenticate(
            config,
            context.secrets_for(source),
            body,
            request.headers,
            request.query_params.get("token"),
        )
    except sources.AuthError as exc:
        _log_rejection(source, exc.status, exc.detail)
        headers = {"WWW-Authenticate": exc.challenge} if exc.challenge else None
        slug = "bad-signature" if config.auth == "hmac" else "unauthenticated"
        raise Problem(exc.status, exc.detail, slug=slug, headers=headers) from None


def _normalize(
    connector: Connector, entries: list[payload.Document | Item], received_at_ms: int
) -> list[Item]:
    """Every alert of every document, in payload order; bad NDJSON lines stay as they are."""
    items: list[Item] = []
    for entry in entries:
        if isinstance(entry, Item):
            items.append(entry)
            continue
        found = connector.items(entry.value, received_at_ms)
        items.extend(item.at(entry.prefix) if entry.prefix else item for item in found)
    return items


async def _deliver(
    context: ApiContext, source: str, delivery_id: str, accepted: Sequence[Item]
) -> list[WebhookFinding]:
    received_at_ms = int(time.time() * 1000)
    # Per incident: its params and its findings, in payload order (a workflow sees them
    # as sent, with whatever else arrives for it meanwhile: ingest/coalescer.py).
    groups: dict[str, tuple[IncidentParams, list[FindingEnvelope]]] = {}
    results: list[WebhookFinding] = []
    findings = [_finding(item) for item in accepted]
    compacted = await _check_in(context, source, findings)
    for item, finding, summary in zip(accepted, findings, compacted, strict=True):
        entity = entity_of(finding)
        params = IncidentParams(incident_id=incident_id_for(entity), entity=entity)
        # Each finding of a many-alert payload needs its own delivery identity, stable
        # across redeliveries of the payload: the webhook id and the alert's place in it.
        one_id = delivery_id if len(accepted) == 1 else f"{delivery_id}#{item.pointer}"
        envelope = FindingEnvelope(
            finding=summary, source=source, webhook_id=one_id, received_at_ms=received_at_ms
        )
        groups.setdefault(params.incident_id, (params, []))[1].append(envelope)
        results.append(_result(item, finding, duplicate=False))
    gate = asyncio.Semaphore(DELIVERY_CONCURRENCY)

    async def gated(params: IncidentParams, envelopes: list[FindingEnvelope]) -> int:
        async with gate:
            await context.coalescer.deliver(params, envelopes)
            return len(envelopes)

    outcomes = await asyncio.gather(
        *(gated(params, envelopes) for params, envelopes in groups.values()),
        return_exceptions=True,
    )
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        for failure in failures:
            # Unavailable: Temporal did not take it; RuntimeError: a lazy client cannot connect.
            if not isinstance(failure, Unavailable | RuntimeError):
                raise failure
        delivered = sum(o for o in outcomes if isinstance(o, int))
        log.warning("webhook.not_durable", source=source, error=str(failures[0]))
        raise Problem(
            503,
            "Temporal did not accept the finding(s), so they are not durable; retry later"
            + (f" ({delivered} of {len(accepted)} were accepted)" if delivered else ""),
            slug="not-durable",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from failures[0]
    for result in results:
        log.info(
            "webhook.accepted",
            source=source,
            incident_id=result.incident_id,
            finding_uid=result.finding_uid,
        )
    return results


async def _check_in(context: ApiContext, source: str, findings: list[Finding]) -> list[Finding]:
    """Raw payloads into the store before anything reaches Temporal (the 202 promises
    both); a store that fails is a 503 like Temporal's, and the redelivery is safe."""
    try:
        return await raw_store.checked_in(context.raw_store, findings)
    except raw_store.RawStoreError as exc:
        log.warning("webhook.raw_not_stored", source=source, error=str(exc))
        raise Problem(
            503,
            "the raw payload store did not keep the finding(s), so they are not accepted; "
            "retry later",
            slug="not-durable",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from exc


def _finding(item: Item) -> Finding:
    if item.finding is None:  # only accepted items are delivered
        raise ValueError(f"item {item.pointer!r} holds no finding")
    return item.finding


def _result(item: Item, finding: Finding, *, duplicate: bool) -> WebhookFinding:
    return WebhookFinding(
        pointer=item.pointer,
        incident_id=incident_id_for(entity_of(finding)),
        finding_uid=finding.finding_info.uid,
        activity=finding.activity_id.name.lower(),
        duplicate=duplicate,
    )


async def _receive(source: str, request: Request, context: ApiContext) -> tuple[Response, str]:
    connector = CONNECTORS.get(source)
    if connector is None:
        raise Problem(
            404,
            f"unknown webhook source {source!r}; known: {sorted(CONNECTORS)}",
            slug="unknown-source",
        )
    config = sources.resolve(context.settings.sources, source)
    try:
        sources.check_client(config, request.client.host if request.client else None)
    except sources.AuthError as exc:
        _log_rejection(source, exc.status, exc.detail)
        raise Problem(exc.status, exc.detail, slug="client-not-allowed") from None
    body = await read_limited(request, context.settings.max_body_bytes)
    ndjson = _media_type(request, connector)
    delivery_id = _authenticate(request, context, source, config, body)
    if (overlong := sources.overlong_delivery_id(request.headers)) is not None:
        _log_rejection(source, 400, overlong)
        raise Problem(400, overlong, slug="invalid-header")
    limits = payload.Limits(
        max_depth=context.settings.webhook_max_depth,
        max_array_items=context.settings.webhook_max_array_items,
    )
    if ndjson:
        entries = payload.parse_ndjson(body, limits)
    else:
        entries = payload.parse(body, limits, ndjson=connector.ndjson)
    items = _normalize(connector, entries, int(time.time() * 1000))
    accepted = [i for i in items if i.finding is not None]
    rejected = [i for i in items if i.errors]
    ignored = [i for i in items if i.ignored is not None]
    if rejected and not accepted:
        errors = [{"pointer": e.pointer, "detail": e.detail} for i in rejected for e in i.errors]
        raise Problem(
            422,
            f"{len(errors)} invalid field(s) in the {source} payload"
            + (f" ({len(rejected)} of {len(items)} alerts rejected)" if len(items) > 1 else ""),
            slug="invalid-finding",
            errors=errors[: payload.MAX_ERRORS],
        )
    delivery_key = f"{source}:{delivery_id}"
    if delivery_key in context.recent_webhook_ids:
        findings = [_result(i, _finding(i), duplicate=True) for i in accepted]
        outcome = "duplicate"
    else:
        findings = await _deliver(context, source, delivery_id, accepted) if accepted else []
        # Remembered only after Temporal accepted every finding: a 503 must be retryable.
        context.recent_webhook_ids.add(delivery_key)
        outcome = "partial" if rejected else ("accepted" if accepted else "ignored")
    body_out = WebhookAccepted(
        findings=findings,
        rejected=[
            WebhookRejected(pointer=i.pointer, errors=[_field(e) for e in i.errors])
            for i in rejected
        ],
        ignored=[WebhookIgnored(pointer=i.pointer, detail=i.ignored or "") for i in ignored],
    )
    return Response(body_out.model_dump_json(), 202, media_type="application/json"), outcome


def _field(error: FieldError) -> dict[str, str]:
    return {"pointer": error.pointer, "detail": error.detail}


@router.post("/v1/webhooks/{source}", status_code=202, **webhook_docs.ROUTE)
async def receive(
    source: Annotated[str, Path(**webhook_docs.SOURCE_PARAMETER)], request: Request
) -> Response:
    # The context and metrics are read from the app, not injected: this is the hot path
    # of an alert storm, and FastAPI's dependency solving was a measurable part of it.
    context: ApiContext = request.app.state.context
    metrics: Metrics = request.app.state.metrics
    started = time.perf_counter()
    label = source if source in CONNECTORS else UNKNOWN_SOURCE
    outcome = "error"  # anything not answered below is a server error
    try:
        response, outcome = await _receive(source, request, context)
    except Problem as exc:
        outcome = OUTCOMES.get(exc.status, "error")
        raise
    finally:
        metrics.webhook_requests.labels(label, outcome).inc()
        metrics.webhook_latency.labels(label).observe(time.perf_counter() - started)
    return response
