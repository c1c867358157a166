"""Request bodies: read within a size limit, parse as strict JSON, validate as a model.

Every route that takes a body reads it through here, so no route can be made to hold
200 MB in memory, recurse 100,000 levels deep, or store a `NaN`: the size is checked
while the body streams in (and up front from Content-Length), nesting is measured before
the parser runs, and non-finite numbers are refused. Routes read their body in a
dependency declared after the caller's authentication, so an anonymous caller is turned
away before a byte of its body is read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from orchestrator.api.payload import MAX_ERRORS, json_loads, too_deep
from orchestrator.api.problems import Problem
from orchestrator.ingest.connectors.base import pointer

M = TypeVar("M", bound=BaseModel)

# Responder and dry-run bodies are small; the webhook limit (max_body_bytes) bounds them
# too, and this bounds nesting, which no legitimate request body comes near.
MAX_DEPTH = 32
JSON_TYPES = frozenset({"application/json"})


class TooLarge(Problem):
    def __init__(self, limit: int, declared: int | None = None) -> None:
        what = f"body of {declared} bytes" if declared is not None else "body"
        super().__init__(413, f"{what} exceeds the limit of {limit} bytes", slug="too-large")


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it (or its Content-Length) passes `limit`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit, int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def loads(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Strict JSON: UTF-8, nested at most `max_depth`, finite numbers only; 400/422 else."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "body is not UTF-8", slug="malformed-json") from None
    if too_deep(body, max_depth):
        raise Problem(
            422,
            f"body nests deeper than {max_depth} levels",
            slug="invalid-request",
            errors=[{"pointer": "", "detail": f"nests deeper than {max_depth} levels"}],
        )
    try:
        return json_loads(text)
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise Problem(400, f"body is not valid JSON: {detail}", slug="malformed-json") from None
    except ValueError as exc:  # NaN/Infinity, or an integer past Python's digit limit
        raise Problem(400, f"body is not valid JSON: {exc}", slug="malformed-json") from None


def check_media_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        raise Problem(
            415,
            f"content type {media_type or '(none)'!r} is not accepted; send application/json",
            accepted=sorted(JSON_TYPES),
        )


def invalid(exc: ValidationError, what: str = "body") -> Problem:
    """422 naming each bad field by JSON pointer, as every other 422 here does."""
    errors = [
        {"pointer": pointer(*err["loc"]), "detail": err["msg"]}
        for err in exc.errors(include_url=False)
    ]
    return Problem(
        422,
        f"{len(errors)} invalid field(s) in the {what}: "
        + "; ".join(f"{e['pointer'] or '/'} {e['detail']}" for e in errors[:5]),
        slug="invalid-request",
        errors=errors[:MAX_ERRORS],
    )


async def json_document(request: Request) -> Any:
    """The request's JSON document, read within the configured body limit."""
    check_media_type(request)
    limit: int = request.app.state.context.settings.max_body_bytes
    return loads(await read_limited(request, limit))


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that reads, parses and validates the body as `model` (strictly).

    Declare it after the authentication dependency: FastAPI solves dependencies in
    order, and the body is not read until this one runs.
    """

    async def read(request: Request) -> M:
        document = await json_document(request)
        try:
            return model.model_validate(document, strict=True)
        except ValidationError as exc:
            raise invalid(exc) from None

    read.__name__ = f"{model.__name__}_body"
    return read
