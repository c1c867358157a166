"""The OpenAPI document at /openapi.json, made to say what the app really answers.

FastAPI documents a JSON `HTTPValidationError` for 422s, but every error here is an RFC
9457 problem (problems.install); and it cannot see the webhook route's raw body. This
module rewrites the generated document once: the Problem schema for every error, a
`default` problem response on every operation (any route may answer 401, 404 or 503),
the webhook models and the security schemes, and an example for every other route.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from orchestrator.api.access import BEARER
from orchestrator.api.actions import ExtendBody, ReasonBody
from orchestrator.api.examples import add_examples
from orchestrator.api.problems import PROBLEM_JSON, PROBLEM_SCHEMA_REF, ProblemDetails
from orchestrator.api.webhook_docs import SECURITY_SCHEMES, WebhookAccepted

_REF_TEMPLATE = "#/components/schemas/{model}"
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
DEFAULT_ERROR = {
    "description": "Any error: an RFC 9457 problem document saying what was wrong",
    "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA_REF}},
}
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
METRICS_SCHEME = {
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "metrics_token, when set; /metrics answers loopback clients only "
        "unless metrics_public",
    }
}


def _security(path: str, operation: dict[str, Any]) -> None:
    """Every operation says how it authenticates, so generated clients send credentials."""
    if "security" in operation:
        return
    if path in OPEN_PATHS:
        operation["security"] = []
    elif path == "/metrics":
        operation["security"] = [{"metricsToken": []}, {}]
    else:
        operation["security"] = BEARER


def _schemas(*models: type[BaseModel]) -> dict[str, Any]:
    """Component schemas of the models and of every model they refer to."""
    found: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
        found.update(schema.pop("$defs", {}))
        found[schema.get("title", model.__name__)] = schema
    return found


def _problem_422(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == _FASTAPI_422)


def rewrite(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(_schemas(ProblemDetails, WebhookAccepted, ReasonBody, ExtendBody))
    components.setdefault("securitySchemes", {}).update({**SECURITY_SCHEMES, **METRICS_SCHEME})
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            _security(path, operation)
            responses = operation.setdefault("responses", {})
            if "422" in responses and _problem_422(responses["422"]):
                responses["422"] = {
                    "description": "Invalid request: each bad field is named",
                    "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA_REF}},
                }
            responses.setdefault("default", DEFAULT_ERROR)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    add_examples(document)
    return document


def install(app: FastAPI) -> None:
    """Replace `app.openapi` with one that builds the rewritten document once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = rewrite(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
