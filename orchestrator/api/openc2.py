"""POST /v1/openc2: Bulkhead as an OpenC2 consumer over HTTPS (SLPF and ER profiles).

Every command is a request, not an order. It goes to the incident of its target entity
as a finding does (orchestrator/standards/openc2_carry.py), the Rego policy decides it
with the producer as the actor (`input.command`, policies/bulkhead/containment/
commands.rego), the guardrails and approvals hold, and the answer is read back from the
incident (openc2_outcome.py); undo commands release through the workflow's own update
(openc2_undo.py).

The HTTP side follows the transfer specifications: v1.1 (CS01) with
`application/openc2+json;version=1.0` and its message envelope (§3.3.2, answered in one),
v1.0 (CS01) with `application/openc2-cmd+json;version=1.0` and a bare command, answered as
`application/openc2-rsp+json;version=1.0`; a bare command under the v1.1 type is taken too
(the form the CACAO export writes). Both ask that the HTTP status carry the OpenC2 status
(v1.0 Table 4-1; v1.1 §4.2.1 #8). The one exception is 102: HTTP cannot end an exchange
with a 1xx status (RFC 9110 §15.2, an interim answer), so a 102 response travels as HTTP
200 with `"status": 102` in the body. Answers are OpenC2 responses, as the LS mandates,
not problem+json, whenever the request names an OpenC2 type; a request that does not is
a 415 problem (it cannot be read as OpenC2), and a body over the size limit a 413 problem.
"""

from __future__ import annotations

import collections
import time
import uuid
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from contracts.findings import FindingEnvelope
from contracts.incident import IncidentParams
from orchestrator.api import openc2_docs
from orchestrator.api.auth import current_principal
from orchestrator.api.body import loads, read_limited
from orchestrator.api.context import ApiContext
from orchestrator.api.openc2_outcome import Outcome, follow, results
from orchestrator.api.openc2_undo import undo
from orchestrator.api.problems import RETRY_AFTER_S, Problem
from orchestrator.ingest.entity import incident_id_for
from orchestrator.responders import authorization
from orchestrator.responders.errors import Forbidden, NoPolicy
from orchestrator.standards.openc2 import OPENC2_CONTENT_TYPE, OPENC2_PATH
from orchestrator.standards.openc2_carry import CommandTooLargeError, finding_of, finding_uid
from orchestrator.standards.openc2_command import (
    MEDIA_TYPES,
    CommandError,
    Envelope,
    parse_command,
    response_type,
    unwrap,
)
from orchestrator.standards.openc2_consumer import (
    PROFILES,
    VERSIONS,
    Proposal,
    Query,
    Translator,
    pairs,
    rule_number,
)
from orchestrator.temporal.errors import Unavailable
from orchestrator.temporal.incidents import IncidentClient
from orchestrator.wiring.inventory import Inventory

log = structlog.get_logger(__name__)
router = APIRouter(tags=["openc2"])
CONSUMER = "bulkhead"  # the `from` of an answer's message header


class RateLimit:
    """At most `per_minute` commands per producer in any 60 s (LS §3.4.2.4 `rate_limit`)."""

    def __init__(self) -> None:
        self._seen: dict[str, collections.deque[float]] = {}

    def admit(self, producer: str, per_minute: int) -> bool:
        now = time.monotonic()
        times = self._seen.setdefault(producer, collections.deque())
        while times and now - times[0] >= 60:
            times.popleft()
        if len(times) >= per_minute:
            return False
        times.append(now)
        return True


class Reply:
    """OpenC2 responses in the form and media type the request used."""

    def __init__(self, media_type: str, request_id: str | None) -> None:
        self.media_type = media_type
        self.request_id = request_id
        self.envelope: Envelope | None = None

    def __call__(
        self,
        status: int,
        text: str,
        found: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> Response:
        response: dict[str, Any] = {"status": status, "status_text": text}
        if found:
            response["results"] = found
        body: dict[str, Any] = response
        if self.envelope is not None:
            message_headers: dict[str, Any] = {
                "created": int(time.time() * 1000),
                "from": CONSUMER,
            }
            if self.envelope.request_id or self.request_id:
                message_headers["request_id"] = self.envelope.request_id or self.request_id
            if self.envelope.sender:
                message_headers["to"] = [self.envelope.sender]
            body = {"headers": message_headers, "body": {"openc2": {"response": response}}}
        out = {"Cache-Control": "no-cache", **(headers or {})}
        if self.request_id:
            out["X-Request-ID"] = self.request_id
        http_status = 200 if status == 102 else status
        return JSONResponse(body, status_code=http_status, media_type=self.media_type, headers=out)


def _inventory(context: ApiContext) -> dict[str, Any]:
    served = context.engine.inventory() if context.engine is not None else None
    return (served or Inventory.load(context.settings.policy_dir)).data


def _features(query: Query, context: ApiContext) -> dict[str, Any]:
    """LS §4.1: each feature asked for; none asked, none given (a bare 200)."""
    every: dict[str, Any] = {
        "versions": VERSIONS,
        "profiles": list(PROFILES),
        "pairs": pairs(),
        "rate_limit": context.settings.openc2_rate_limit,
    }
    return {name: every[name] for name in query.features}


@router.post(OPENC2_PATH, **openc2_docs.ROUTE)
async def openc2(request: Request) -> Response:
    context: ApiContext = request.app.state.context
    answer_type = response_type(request.headers.get("content-type", ""))
    reply = Reply(answer_type or OPENC2_CONTENT_TYPE, request.headers.get("x-request-id"))
    try:
        principal = current_principal(request, context)
    except Problem as exc:
        if answer_type is None:
            raise
        return reply(401, exc.detail, headers=exc.headers)
    if answer_type is None:
        accepted = sorted(f"{main};version=1.0" for main in MEDIA_TYPES)
        raise Problem(415, f"send an OpenC2 command as {' or '.join(accepted)}", accepted=accepted)
    body = await read_limited(request, context.settings.max_body_bytes)
    try:
        authorization.authorize(context.engine, "command", principal)
    except Forbidden as exc:
        return reply(403, "; ".join(exc.reasons) or exc.message)
    except NoPolicy as exc:
        return reply(503, exc.message, headers={"Retry-After": RETRY_AFTER_S})
    try:
        document = loads(body)
    except Problem as exc:
        return reply(400, exc.detail)
    try:
        raw, reply.envelope = unwrap(document, header_request_id=reply.request_id)
        message_id = reply.envelope.request_id if reply.envelope else reply.request_id
        command = parse_command(raw, request_id=message_id)
        if not _rate(request).admit(principal.id, context.settings.openc2_rate_limit):
            per_minute = context.settings.openc2_rate_limit
            return reply(
                503, f"rate limit: {per_minute} commands a minute", headers={"Retry-After": "60"}
            )
        now_ms = int(time.time() * 1000)
        translated = Translator(_inventory(context)).translate(command, principal, now_ms=now_ms)
    except CommandError as exc:
        return reply(exc.status, exc.text)
    log.info("openc2.command", action=command.action, target=command.target, producer=principal.id)
    if isinstance(translated, Query):
        return reply(200, "features", _features(translated, context))
    if isinstance(translated, Proposal):
        return await _propose(context, reply, translated, command.response_requested, now_ms)
    outcome = await undo(context, translated, principal)
    return reply(outcome.status, outcome.text, results(outcome))


async def _propose(
    context: ApiContext, reply: Reply, proposal: Proposal, wanted: str, now_ms: int
) -> Response:
    carried = proposal.command
    if not carried.command_id:
        carried = carried.model_copy(update={"command_id": str(uuid.uuid4())})
    try:
        finding = finding_of(
            carried,
            entity=proposal.entity,
            kind=proposal.kind,
            zone=proposal.zone,
            title=f"OpenC2 {proposal.title} from {carried.producer.name}",
            now_ms=now_ms,
        )
    except CommandTooLargeError as exc:
        return reply(400, str(exc))
    params = IncidentParams(incident_id=incident_id_for(proposal.entity), entity=proposal.entity)
    envelope = FindingEnvelope(finding=finding, source="openc2", received_at_ms=now_ms)
    try:
        await context.coalescer.deliver(params, [envelope])
    except (Unavailable, RuntimeError) as exc:
        log.warning("openc2.not_durable", error=str(exc))
        return reply(
            503,
            "Temporal did not take the command; send it again",
            headers={"Retry-After": RETRY_AFTER_S},
        )
    step_ids = [s.id for s in carried.steps]
    outcome: Outcome = await follow(
        IncidentClient(context.client),
        params.incident_id,
        finding_uid(carried),
        step_ids,
        wanted=wanted,
        wait_s=context.settings.openc2_wait_s,
    )
    extra: dict[str, Any] = {}
    if carried.profile == "slpf" and outcome.status in (102, 200):
        # SLPF §2.3.2: the rule number is the step's, for `delete slpf:rule_number`.
        incident_id = outcome.incident_id or params.incident_id
        extra["slpf"] = {"rule_number": rule_number(incident_id, step_ids[0])}
    log.info("openc2.answered", status=outcome.status, incident_id=outcome.incident_id)
    return reply(outcome.status, outcome.text, results(outcome, extra))


def _rate(request: Request) -> RateLimit:
    """One limiter per app (each process counts its own producers' commands)."""
    limiter: RateLimit | None = getattr(request.app.state, "openc2_rate", None)
    if limiter is None:
        limiter = request.app.state.openc2_rate = RateLimit()
    return limiter
