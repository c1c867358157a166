"""The webhook route's short way in (orchestrator/api/front.py) answers exactly as the
FastAPI route behind it: the same status, media type, headers that matter and body for
every kind of request, good or bad, posted to both on one context."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from harness import make_settings, signed
from temporalio.client import Client
from webhook_helpers import PROBLEM, unique_finding

from orchestrator.api import webhooks
from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.api.front import BulkheadApi
from orchestrator.config import Settings

HEADERS_THAT_MATTER = ("content-type", "www-authenticate", "retry-after", "connection")
Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def both_ways(settings: Settings, client: Client) -> tuple[BulkheadApi, BulkheadApi, list[str]]:
    """Two apps on one context: the short way in, counted, and FastAPI's route alone."""
    context = build_context(settings, client, None, settings.webhook_secret.get_secret_value())
    short, routed = create_app(context), create_app(context)
    routed.webhook_entry = None
    taken: list[str] = []
    entry = short.webhook_entry
    assert entry is not None

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        taken.append(scope["path"])
        await entry(scope, receive, send)

    short.webhook_entry = counted
    return short, routed, taken


def http(app: BulkheadApi) -> httpx.AsyncClient:
    # Unexpected errors reach the client as a response, as they would over a socket.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 1))
    return httpx.AsyncClient(transport=transport, base_url="http://bulkhead.test")


async def chunks(chunk: bytes) -> AsyncIterator[bytes]:
    """A body of two chunks and no declared length, as a streaming client sends it."""
    yield chunk
    yield chunk


def seen(response: httpx.Response) -> dict[str, Any]:
    headers = {h: response.headers.get(h) for h in HEADERS_THAT_MATTER}
    try:
        body: Any = response.json()
    except json.JSONDecodeError:
        body = response.text
    return {"status": response.status_code, "headers": headers, "body": body}


async def test_every_kind_of_webhook_request_is_answered_alike_both_ways(
    temporal_client: Client,
):
    settings = make_settings(1, max_body_bytes=4096)
    secret = settings.webhook_secret.get_secret_value()
    good = json.dumps(unique_finding()).encode()
    batch = json.dumps([unique_finding(), {"finding_info": {}}]).encode()
    nan = good.replace(b"{", b'{"x": NaN, ', 1)
    route, typed = "/v1/webhooks/generic", {"content-type": "application/json"}

    def post(body: Any, headers: dict[str, str] | None = None, path: str = route) -> Request:
        # Signed at each send: a webhook id is accepted once per context.
        return lambda c: c.post(path, content=body, headers=signed(good, secret) | (headers or {}))

    def resigned(body: bytes, **headers: str) -> Request:
        return lambda c: c.post(route, content=body, headers=signed(body, secret) | headers)

    requests: dict[str, Request] = {
        "accepted": resigned(good),
        "partly rejected": resigned(batch),
        "redelivered": lambda c: c.post(route, content=good, headers=signed(good, secret, "msg_1")),
        "unsigned": lambda c: c.post(route, content=good, headers=typed),
        "bad signature": post(good, signed(b"other", secret)),
        "unknown source": post(good, path="/v1/webhooks/nosuch"),
        "not json": resigned(b"{nope"),
        "nan": resigned(nan),
        "wrong media type": post(good, {"content-type": "text/plain"}),
        "too large, declared": resigned(b" " * 5000),
        "too large, chunked": lambda c: c.post(route, content=chunks(b" " * 3000), headers=typed),
        "compressed": post(good, {"content-encoding": "gzip"}),
        "a GET": lambda c: c.get(route),
        "a trailing slash": post(good, path=route + "/"),
        "two segments": post(good, path=route + "/x"),
    }  # fmt: skip
    short, routed, taken = both_ways(settings, temporal_client)
    async with http(short) as a, http(routed) as b:
        # "redelivered" is a webhook id the context has seen, for both.
        primed = await requests["redelivered"](b)
        assert primed.status_code == 202
        answers = {}
        for name, make in requests.items():
            answers[name] = (seen(await make(a)), seen(await make(b)))
    for name, (short_way, fastapi_way) in answers.items():
        assert short_way == fastapi_way, name
    assert answers["accepted"][0]["status"] == 202
    assert answers["redelivered"][0]["body"]["findings"][0]["duplicate"] is True
    assert answers["bad signature"][0]["status"] == 401
    assert answers["too large, chunked"][0]["status"] == 413
    assert answers["a GET"][0]["status"] == 405
    assert all(
        answer[0]["headers"]["content-type"] == PROBLEM
        for name, answer in answers.items()
        if answer[0]["status"] >= 400
    )
    # The POSTs to the route took the short way; the GET and other paths did not.
    assert len(taken) == 12
    assert set(taken) == {"/v1/webhooks/generic", "/v1/webhooks/nosuch"}


async def test_an_unexpected_error_is_a_500_problem_both_ways(
    temporal_client: Client, monkeypatch: pytest.MonkeyPatch
):
    settings = make_settings(1)
    short, routed, taken = both_ways(settings, temporal_client)

    async def broken(*args: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(webhooks, "_receive", broken)
    body = json.dumps(unique_finding()).encode()
    async with http(short) as a, http(routed) as b:
        headers = {"content-type": "application/json"}
        answers = [
            await c.post("/v1/webhooks/generic", content=body, headers=headers) for c in (a, b)
        ]
    assert taken == ["/v1/webhooks/generic"]
    for answer in answers:
        assert answer.status_code == 500
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["instance"] == "/v1/webhooks/generic"
        assert "secret internals" not in answer.text
    assert answers[0].json() == answers[1].json()
