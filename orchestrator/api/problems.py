"""RFC 9457 problem details: every HTTP error Bulkhead returns says what was wrong."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.responders import errors as responders

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://bulkhead.dev/problems/"


class Problem(Exception):  # noqa: N818 - raised as `raise Problem(...)`, the RFC's own term
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or HTTPStatus(status).phrase.lower().replace(" ", "-")
        self.headers = headers or {}
        self.extra = extra


RETRY_AFTER_S = "5"


class ProblemField(BaseModel):
    pointer: str = Field(description="RFC 6901 JSON pointer to the bad field")
    detail: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, the body of every error Bulkhead returns (OpenAPI only)."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(examples=[TYPE_BASE + "bad-signature"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemField] | None = Field(
        default=None, description="each invalid field, for 422 responses"
    )


PROBLEM_SCHEMA_REF = {"$ref": "#/components/schemas/Problem"}


def problem_doc(
    status: int, description: str, detail: str, *, slug: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An OpenAPI response entry for an error, with an example problem document."""
    slug = slug or HTTPStatus(status).phrase.lower().replace(" ", "-")
    example = {
        "type": TYPE_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA_REF, "example": example}},
    }


def temporal_unavailable(detail: str) -> Problem:
    """503 for a call Temporal did not answer: nothing happened, the client may retry."""
    return Problem(503, detail, slug="temporal-unavailable", headers={"Retry-After": RETRY_AFTER_S})


def responder_problem(error: responders.ResponderError) -> Problem:
    """The HTTP answer to a responder error: the API sends it as problem+json and the
    console shows it on a page, with the same status, slug and detail."""
    detail = error.message
    if isinstance(error, responders.Forbidden):
        return Problem(403, detail, slug="forbidden", decision_id=error.decision_id)
    if isinstance(error, responders.NoPolicy):
        return Problem(503, detail, slug="no-policy", headers={"Retry-After": RETRY_AFTER_S})
    if isinstance(error, responders.Unavailable):
        return temporal_unavailable(detail)
    statuses: dict[type[responders.ResponderError], tuple[int, str | None]] = {
        responders.UnknownIncident: (404, "unknown-incident"),
        responders.UnknownStep: (404, "unknown-step"),
        responders.Conflict: (409, "conflict"),
    }
    # Failed, and any error added later without a row here: 500, never a silent 200.
    status, slug = statuses.get(type(error), (500, None))
    return Problem(status, detail, slug=slug)


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    slug = slug or HTTPStatus(status).phrase.lower().replace(" ", "-")
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def rendered(exc: Problem, path: str) -> JSONResponse:
    """The problem+json response for a Problem raised while answering `path`."""
    return problem_response(
        exc.status, exc.detail, slug=exc.slug, instance=path, headers=exc.headers, **exc.extra
    )


def unexpected(path: str) -> JSONResponse:
    """What a client hears of an error nothing expected: a 500 problem, no internals."""
    return problem_response(
        500,
        "an unexpected error occurred; it is logged on the server",
        slug="internal-server-error",
        instance=path,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return rendered(exc, request.url.path)

    # Starlette gives this handler to its outermost middleware, which sends its response
    # and re-raises, so the server still logs the traceback: a 500 is problem+json too.
    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected(request.url.path)

    @app.exception_handler(responders.ResponderError)
    async def _responder(request: Request, exc: responders.ResponderError) -> JSONResponse:
        return await _problem(request, responder_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.method} {request.url.path}"
        return problem_response(
            exc.status_code,
            detail,
            instance=request.url.path,
            headers=dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"pointer": "/" + "/".join(str(p) for p in err["loc"]), "detail": err["msg"]}
            for err in exc.errors()
        ]
        return problem_response(
            422,
            f"{len(errors)} invalid field(s)",
            slug="invalid-request",
            instance=request.url.path,
            errors=errors,
        )
