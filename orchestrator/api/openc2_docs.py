"""OpenAPI documentation of POST /v1/openc2: the two media types, a command and an answer
for each, and the OpenC2 statuses the route answers with (LS §3.3.2.1).

The route reads its body raw (the media type decides how), so the request body is
described here rather than derived from a parameter.
"""

from __future__ import annotations

from typing import Any

from orchestrator.api.problems import PROBLEM_JSON, PROBLEM_SCHEMA_REF, problem_doc
from orchestrator.standards.openc2 import OPENC2_CONTENT_TYPE
from orchestrator.standards.openc2_command import COMMAND_TYPE_V10, RESPONSE_TYPE_V10

COMMAND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["action", "target"],
    "properties": {
        "action": {"type": "string"},
        "target": {"type": "object", "minProperties": 1, "maxProperties": 1},
        "args": {"type": "object", "minProperties": 1},
        "actuator": {"type": "object", "minProperties": 1, "maxProperties": 1},
        "command_id": {"type": "string", "pattern": "^\\S{0,36}$"},
    },
    "additionalProperties": False,
}
MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["body"],
    "properties": {
        "headers": {"type": "object"},
        "body": {
            "type": "object",
            "required": ["openc2"],
            "properties": {
                "openc2": {
                    "type": "object",
                    "required": ["request"],
                    "properties": {"request": COMMAND_SCHEMA},
                }
            },
        },
    },
}
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "integer", "enum": [102, 200, 400, 401, 403, 404, 500, 501, 503]},
        "status_text": {"type": "string"},
        "results": {"type": "object"},
    },
}
RESPONSE_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["body"],
    "properties": {
        "headers": {"type": "object"},
        "body": {
            "type": "object",
            "properties": {
                "openc2": {"type": "object", "properties": {"response": RESPONSE_SCHEMA}}
            },
        },
    },
}

DENY = {
    "action": "deny",
    "target": {
        "ipv4_connection": {
            "src_addr": "198.18.40.33",
            "dst_addr": "198.18.50.10",
            "protocol": "tcp",
            "dst_port": 502,
        }
    },
    "args": {"duration": 600000, "response_requested": "complete"},
    "actuator": {"slpf": {}},
    "command_id": "5f0e2a3c-7d2b-4c4e-9f57-2f0c6e1b9a10",
}
DONE = {
    "status": 200,
    "status_text": "done in incident inc-eng-ws-03",
    "results": {
        "slpf": {"rule_number": 416257301},
        "x-bulkhead": {
            "incident_id": "inc-eng-ws-03",
            "steps": {"deny-flow:1a2b3c4d5e6f": "verified"},
        },
    },
}


def _openc2(status: int, description: str, example: dict[str, Any]) -> dict[str, Any]:
    content = {
        media: {
            "schema": {"anyOf": [RESPONSE_SCHEMA, RESPONSE_MESSAGE_SCHEMA]},
            "example": {**example, "status": example.get("status", status)},
        }
        for media in (OPENC2_CONTENT_TYPE, RESPONSE_TYPE_V10)
    }
    return {"description": description, "content": content}


def _both(status: int, description: str, text: str) -> dict[str, Any]:
    documented = _openc2(status, description, {"status": status, "status_text": text})
    documented["content"][PROBLEM_JSON] = {"schema": PROBLEM_SCHEMA_REF}
    return documented


ROUTE: dict[str, Any] = {
    "summary": "Take an OpenC2 command (SLPF, ER)",
    "description": (
        "An OpenC2 consumer over HTTPS (transfer v1.1 and v1.0). Each command is a request "
        "the policy decides with the producer as the actor, in the incident of its target; "
        "the answer is the OpenC2 response, its status also the HTTP status, except 102 "
        "(waiting for approval, or not finished within the wait), sent as HTTP 200. Needs "
        "the role openc2-producer. Pairs: docs/STANDARDS.md, or `query features`."
    ),
    "response_model": None,
    "responses": {
        200: _openc2(200, "Done (or, with status 102 in the body, still in progress)", DONE),
        400: _openc2(400, "Malformed command", {"status_text": "a command must have `target`"}),
        401: _both(401, "Not authenticated", "send Authorization: Bearer <token>"),
        403: _openc2(
            403,
            "Refused: the producer may not command, or the policy said no",
            {
                "status_text": "refused by policy: openc2: refused: step deny:198.18.20.0_24 "
                "would cut off essential zone energy, never on a command's say-so"
            },
        ),
        404: _openc2(
            404,
            "Nothing matches (an unknown rule number)",
            {"status_text": "no rule 7 is in force"},
        ),
        413: problem_doc(413, "Body too large", "body exceeds the limit of 1048576 bytes"),
        415: problem_doc(
            415, "Not an OpenC2 media type", "send application/openc2+json;version=1.0"
        ),
        500: _openc2(
            500,
            "The step failed, or the target cannot be accessed",
            {"status_text": "Cannot access device"},
        ),
        501: _openc2(
            501, "Pair, profile or option not supported", {"status_text": "Command not supported"}
        ),
        503: _openc2(
            503, "Temporal did not take it, or the rate limit: retry", {"status_text": "rate limit"}
        ),
    },
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                OPENC2_CONTENT_TYPE: {
                    "schema": {"anyOf": [MESSAGE_SCHEMA, COMMAND_SCHEMA]},
                    "example": {
                        "headers": {"request_id": DENY["command_id"], "from": "soar.city.example"},
                        "body": {"openc2": {"request": DENY}},
                    },
                },
                COMMAND_TYPE_V10: {
                    "schema": COMMAND_SCHEMA,
                    "example": {
                        "action": "query",
                        "target": {"features": ["versions", "profiles", "pairs", "rate_limit"]},
                    },
                },
            },
        },
    },
}
