"""OpenAPI documentation of POST /v1/webhooks/{source}: models, examples, error responses.

The route reads its body raw (it must verify the signature over the exact bytes), so
FastAPI cannot derive the request body from a parameter; it is described here instead,
with one example per source taken from examples/findings/ (the same files
`bulkhead send` posts in the README and the tests normalize).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.api.problems import ProblemField, problem_doc
from orchestrator.config import REPO_ROOT
from orchestrator.ingest.connectors import CONNECTORS

EXAMPLES_DIR = REPO_ROOT / "examples" / "findings"
# The generic source's sample predates the per-vendor ones and keeps its name.
EXAMPLE_FILES = {"generic": "traffic-controller-compromise.json"}


class WebhookFinding(BaseModel):
    pointer: str = Field(description="where the alert sits in the payload (JSON pointer)")
    incident_id: str
    finding_uid: str = Field(description="finding_info.uid: the vendor's dedupe key")
    activity: Literal["unknown", "create", "update", "close", "other"]
    duplicate: bool = Field(description="true when this delivery was seen before")


class WebhookRejected(BaseModel):
    pointer: str
    errors: list[ProblemField]


class WebhookIgnored(BaseModel):
    pointer: str
    detail: str = Field(description="why the record is not a finding")


class WebhookAccepted(BaseModel):
    """202: every finding listed here is durably held by Temporal."""

    findings: list[WebhookFinding]
    rejected: list[WebhookRejected] = Field(
        default_factory=list, description="alerts of this payload that were not accepted"
    )
    ignored: list[WebhookIgnored] = Field(
        default_factory=list, description="records that are not alerts (skipped)"
    )


@cache
def example_payload(source: str) -> Any:
    """The sample payload of a source, or None when the repository's examples are absent."""
    path = EXAMPLES_DIR / EXAMPLE_FILES.get(source, f"{source}.json")
    return json.loads(path.read_text()) if path.is_file() else None


def _request_examples() -> dict[str, Any]:
    examples: dict[str, Any] = {}
    for source, connector in CONNECTORS.items():
        value = example_payload(source)
        if value is not None:
            examples[source] = {"summary": connector.title, "value": value}
    return examples


def _ndjson_example() -> str:
    alert = example_payload("suricata") or {"event_type": "alert"}
    flow = {"timestamp": "2026-11-30T09:00:01.000000+0000", "event_type": "flow"}
    return "\n".join(json.dumps(r, separators=(",", ":")) for r in (alert, flow)) + "\n"


SOURCE_PARAMETER: dict[str, Any] = {
    "description": "The sending SIEM; it picks the connector that reads the body.",
    "json_schema_extra": {"enum": sorted(CONNECTORS)},
    "openapi_examples": {"splunk": {"value": "splunk"}, "generic": {"value": "generic"}},
}

_ACCEPTED_EXAMPLES = {
    "accepted": {
        "summary": "one alert, accepted",
        "value": {
            "findings": [
                {
                    "pointer": "",
                    "incident_id": "inc-tsc-0001",
                    "finding_uid": "det-2026-0001",
                    "activity": "create",
                    "duplicate": False,
                }
            ],
            "rejected": [],
            "ignored": [],
        },
    },
    "partial": {
        "summary": "an Alertmanager group with one bad alert",
        "value": {
            "findings": [
                {
                    "pointer": "/alerts/0",
                    "incident_id": "inc-198.18.20.10",
                    "finding_uid": "alertmanager:5d1c6f3a2b9e8d7c:1796230800000",
                    "activity": "close",
                    "duplicate": False,
                }
            ],
            "rejected": [
                {
                    "pointer": "/alerts/1",
                    "errors": [{"pointer": "/alerts/1/startsAt", "detail": "Field required"}],
                }
            ],
            "ignored": [],
        },
    },
}

_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": False,
        "description": "Standard Webhooks message id (hmac sources); a repeat is a duplicate",
        "schema": {"type": "string", "maxLength": 256},
        "example": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": False,
        "description": "Seconds since the epoch; accepted within the source's tolerance",
        "schema": {"type": "string"},
        "example": "1796227200",
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": False,
        "description": "Space-separated `v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`",
        "schema": {"type": "string"},
        "example": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    },
    {
        "name": "idempotency-key",
        "in": "header",
        "required": False,
        "description": "Delivery id for bearer and url-token sources (default: body digest)",
        "schema": {"type": "string", "maxLength": 256},
    },
    {
        "name": "token",
        "in": "query",
        "required": False,
        "description": "The source's token, for url-token sources (Splunk)",
        "schema": {"type": "string"},
    },
]

ROUTE: dict[str, Any] = {
    "summary": "Receive findings from a SIEM",
    "description": (
        "Authenticates the request as the source is configured (Standard Webhooks HMAC by "
        "default, or a bearer or URL token), normalizes each alert of the body to an OCSF "
        "Detection Finding and hands each to its incident's workflow. Answers 202 only once "
        "Temporal holds every accepted finding. See docs/SIEMS.md for each SIEM's setup."
    ),
    "response_model": None,
    "responses": {
        202: {
            "description": "Accepted: each listed finding is durable",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/WebhookAccepted"},
                    "examples": _ACCEPTED_EXAMPLES,
                }
            },
        },
        400: problem_doc(
            400,
            "Malformed body, or a delivery id (webhook-id, idempotency-key) over 256 characters",
            "body is not valid JSON: Expecting value at line 1 column 1",
        ),
        401: problem_doc(
            401,
            "Not authenticated: the request is not provably from the source",
            "no webhook-signature matches an accepted secret",
            slug="bad-signature",
        ),
        403: problem_doc(
            403,
            "The client address is not in the source's allowlist",
            "client address 203.0.113.9 is not allowed to post to this source",
            slug="client-not-allowed",
        ),
        404: problem_doc(
            404, "Unknown source", "unknown webhook source 'x'", slug="unknown-source"
        ),
        413: problem_doc(413, "Body too large", "body exceeds the limit of 1048576 bytes"),
        415: problem_doc(
            415, "Content type not accepted", "content type 'text/plain' is not accepted"
        ),
        422: problem_doc(
            422,
            "No alert of the payload could be accepted; each bad field is named",
            "1 invalid field(s) in the wazuh payload",
            slug="invalid-finding",
            errors=[{"pointer": "/rule/level", "detail": "Field required"}],
        ),
        503: {
            **problem_doc(
                503,
                "Temporal did not accept the findings: retry after the given delay",
                "Temporal did not accept the finding(s), so they are not durable; retry later",
                slug="not-durable",
            ),
            "headers": {"Retry-After": {"schema": {"type": "string"}, "example": "5"}},
        },
    },
    "openapi_extra": {
        "parameters": _HEADERS,
        "security": [{"standardWebhooks": []}, {"bearerToken": []}, {"urlToken": []}],
        "requestBody": {
            "required": True,
            "description": (
                "The SIEM's own payload: an OCSF finding or list of findings (generic), "
                "Splunk's alert action body, Kibana's connector body, a Sentinel incident "
                "trigger, a Wazuh alert, Suricata EVE records (object, array or NDJSON), "
                "a Falcosidekick event, or an Alertmanager v4 notification."
            ),
            "content": {
                "application/json": {
                    "schema": {"anyOf": [{"type": "object"}, {"type": "array"}]},
                    "examples": _request_examples(),
                },
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": _ndjson_example(),
                },
            },
        },
    },
}

SECURITY_SCHEMES = {
    "standardWebhooks": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": "Standard Webhooks HMAC-SHA256 (with webhook-id and webhook-timestamp)",
    },
    "bearerToken": {"type": "http", "scheme": "bearer"},
    "urlToken": {"type": "apiKey", "in": "query", "name": "token"},
}
