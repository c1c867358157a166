"""POST /v1/webhooks/{source}: verify, normalize, and durably hand findings to Temporal."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from orchestrator import webhooks
from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.problems import RETRY_AFTER_S, Problem
from orchestrator.connectors import CONNECTORS
from orchestrator.connectors.base import InvalidPayload
from orchestrator.incidents import entity_of, incident_id_for
from orchestrator.temporal import deliver_finding
from workflows.model import Finding, FindingEnvelope
from workflows.state import IncidentParams

log = structlog.get_logger(__name__)
router = APIRouter()
START_TIMEOUT = timedelta(seconds=5)
JSON_TYPES = ("application/json",)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise Problem(400, "body is not UTF-8", slug="malformed-json") from None
    except json.JSONDecodeError as exc:
        raise Problem(
            400,
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            slug="malformed-json",
        ) from None


async def _deliver(
    context: ApiContext, source: str, webhook_id: str, findings: list[Finding]
) -> list[dict[str, Any]]:
    accepted: list[dict[str, Any]] = []
    received_at_ms = int(time.time() * 1000)
    for index, finding in enumerate(findings):
        entity = entity_of(finding)
        params = IncidentParams(incident_id=incident_id_for(entity), entity=entity)
        # One payload may carry many findings; each needs its own delivery identity.
        delivery_id = webhook_id if len(findings) == 1 else f"{webhook_id}#{index}"
        envelope = FindingEnvelope(
            finding=finding, source=source, webhook_id=delivery_id, received_at_ms=received_at_ms
        )
        try:
            await deliver_finding(
                context.client, context.settings, params, envelope, rpc_timeout=START_TIMEOUT
            )
        except (RPCError, RuntimeError) as exc:
            log.warning(
                "webhook.not_durable", source=source, error=str(exc), incident_id=params.incident_id
            )
            raise Problem(
                503,
                "Temporal did not accept the finding, so it is not durable; retry later"
                + (
                    f" ({len(accepted)} earlier finding(s) of this payload were accepted)"
                    if accepted
                    else ""
                ),
                slug="not-durable",
                headers={"Retry-After": RETRY_AFTER_S},
            ) from exc
        log.info(
            "webhook.accepted",
            source=source,
            incident_id=params.incident_id,
            finding_uid=finding.finding_info.uid,
        )
        accepted.append(
            {
                "incident_id": params.incident_id,
                "finding_uid": finding.finding_info.uid,
                "duplicate": False,
            }
        )
    return accepted


@router.post("/v1/webhooks/{source}", status_code=202)
async def receive(
    source: str, request: Request, context: Annotated[ApiContext, Depends(get_context)]
) -> JSONResponse:
    connector = CONNECTORS.get(source)
    if connector is None:
        raise Problem(
            404,
            f"unknown webhook source {source!r}; known: {sorted(CONNECTORS)}",
            slug="unknown-source",
        )
    body = await _read_body(request, context.settings.max_body_bytes)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        raise Problem(
            415, f"content type {media_type or '(none)'!r} is not accepted; send application/json"
        )
    try:
        webhook_id = webhooks.verify(body, request.headers, context.secrets_for(source))
    except webhooks.SignatureError as exc:
        log.info("webhook.rejected", source=source, reason=str(exc))
        raise Problem(401, str(exc), slug="bad-signature") from None
    try:
        findings = connector.normalize(_parse_json(body))
    except InvalidPayload as exc:
        raise Problem(
            422,
            f"{len(exc.errors)} invalid field(s) in the {source} payload",
            slug="invalid-finding",
            errors=[{"pointer": e.pointer, "detail": e.detail} for e in exc.errors],
        ) from None
    delivery_key = f"{source}:{webhook_id}"
    if delivery_key in context.recent_webhook_ids:
        duplicates = [
            {
                "incident_id": incident_id_for(entity_of(f)),
                "finding_uid": f.finding_info.uid,
                "duplicate": True,
            }
            for f in findings
        ]
        return JSONResponse({"findings": duplicates}, status_code=202)
    accepted = await _deliver(context, source, webhook_id, findings)
    # Remembered only after Temporal accepted every finding: a 503 must be retryable.
    context.recent_webhook_ids.add(delivery_key)
    return JSONResponse({"findings": accepted}, status_code=202)
