"""The front door: who may read, what a body may be, and what no request can do to the API.

Routes are enumerated from the app itself, so a route added later is held to the same
rules without anyone remembering to add it here.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from functools import partial
from typing import Any

import httpx
import pytest
from harness import api_client, make_settings, reader_headers, running_worker, serving, signed
from temporalio.client import Client

from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.api.dry_runs import shared_dry_runs
from orchestrator.config import Settings
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.responders.principals import PrincipalStore

PROBLEM = "application/problem+json"
OPEN = {"/healthz", "/readyz", "/openapi.json", "/metrics"}
DEEP = b"[" * 100_000 + b"]" * 100_000


NO_PAYLOAD = "0" * 64  # a raw payload digest nobody posted


def routes(settings: Settings, client: Client) -> list[tuple[str, str]]:
    """(method, concrete path) of every API route, path parameters filled in."""
    app = create_app(build_context(settings, client, None, ""))
    found = []
    for path, operations in app.openapi()["paths"].items():
        concrete = (
            path.replace("{incident_id}", "inc-x")
            .replace("{step_id}", "fallback:tsc-0001")
            .replace("{source}", "generic")
            .replace("{change}", "pause")
            .replace("{sha256}", NO_PAYLOAD)
        )
        found += [(method.upper(), concrete) for method in operations]
    return found


def token(settings: Settings, *roles: str) -> dict[str, str]:
    name = "-".join(roles) + "-caller"
    return {
        "Authorization": f"Bearer {PrincipalStore(settings.principals_path).add(name, list(roles))}"
    }


async def test_every_v1_read_is_401_anonymously_and_answers_a_viewer(temporal_client: Client):
    settings = make_settings(1)
    reads = [(m, p) for m, p in routes(settings, temporal_client) if m == "GET" and p not in OPEN]
    assert {"/v1/incidents", "/v1/incidents/inc-x", "/v1/automation", "/v1/policy"} <= {
        p for _, p in reads
    }
    engine = EmbeddedEngine(settings.policy_dir)
    async with (
        running_worker(temporal_client, settings),
        api_client(temporal_client, settings, None, engine, anonymous=True) as http,
    ):
        await http._transport.app.state.context.city.ensure()  # type: ignore[attr-defined]
        anonymous = {p: await http.get(p) for _, p in reads}
        viewer = {p: await http.get(p, headers=reader_headers(settings)) for _, p in reads}
        evaluate = await http.post("/v1/policy/evaluate", json={"findings": []})
        healthz = await http.get("/healthz")
    assert {p: r.status_code for p, r in anonymous.items()} == dict.fromkeys(anonymous, 401)
    assert all(r.headers["content-type"] == PROBLEM for r in anonymous.values())
    assert evaluate.status_code == 401
    assert healthz.status_code == 200
    # A viewer reads; the one incident here does not exist, so it is a 404, not a 401.
    assert {p: r.status_code for p, r in viewer.items()} == {
        **dict.fromkeys(viewer, 200),
        "/v1/incidents/inc-x": 404,
        "/v1/incidents/inc-x/cacao": 404,
        "/v1/incidents/inc-x/release-preview": 404,
        f"/v1/raw/{NO_PAYLOAD}": 404,
    }


async def test_a_deep_body_to_every_json_route_is_a_4xx(temporal_client: Client):
    """100,000 nested brackets: no RecursionError, no 500, on any route that takes a body."""
    settings = make_settings(1)
    engine = EmbeddedEngine(settings.policy_dir)
    caller = token(settings, "responder", "duty-officer", "admin")
    secret = settings.webhook_secret.get_secret_value()
    posts = [p for m, p in routes(settings, temporal_client) if m == "POST"]
    assert len(posts) >= 7
    answers = {}
    async with api_client(temporal_client, settings, None, engine) as http:
        for path in posts:
            headers = (
                signed(DEEP, secret)
                if "/webhooks/" in path
                else {
                    **caller,
                    "content-type": "application/json",
                }
            )
            answers[path] = await http.post(path, content=DEEP, headers=headers)
    assert {p: 400 <= r.status_code < 500 for p, r in answers.items()} == dict.fromkeys(
        answers, True
    ), {p: r.status_code for p, r in answers.items()}
    assert all(r.headers["content-type"] == PROBLEM for r in answers.values())


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"lease_s": 0, "reason": "x"}, "/lease_s"),
        ({"lease_s": -600, "reason": "x"}, "/lease_s"),
        ({"lease_s": 7 * 24 * 3600 + 1, "reason": "x"}, "/lease_s"),
        ({"lease_s": "3600", "reason": "x"}, "/lease_s"),
        ({"lease_s": 3600.0, "reason": "x"}, "/lease_s"),
        ({"lease_s": True, "reason": "x"}, "/lease_s"),
        ({"lease_s": 60, "reason": "x" * 10_000}, "/reason"),
        ({"lease_s": 60, "reason": "x", "approver": "me"}, "/approver"),
    ],
)
async def test_action_bodies_are_strict_and_each_bad_field_is_named(
    temporal_client: Client, body: dict[str, Any], pointer: str
):
    settings = make_settings(1)
    engine = EmbeddedEngine(settings.policy_dir)
    async with api_client(temporal_client, settings, None, engine) as http:
        response = await http.post(
            "/v1/incidents/inc-x/steps/fallback:tsc-0001/extend",
            json=body,
            headers=token(settings, "responder"),
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert pointer in [e["pointer"] for e in response.json()["errors"]]


async def test_an_anonymous_action_is_refused_before_its_body_is_read(temporal_client: Client):
    """The body is not even parsed: malformed JSON from a stranger is a 401, not a 400."""
    settings = make_settings(1)
    async with api_client(temporal_client, settings, None, anonymous=True) as http:
        response = await http.post(
            "/v1/incidents/inc-x/release",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"findings": [], "active_containments": NaN}', {}, 400),
        (b'{"active_containments": Infinity}', {}, 400),
        (b'{"findings": [{"x": ' + b"9" * 5000 + b"}]}", {}, 400),
        (b'{"findings": [1], "active_containments": "many"}', {}, 422),
        (b'{"findings": []}', {"content-encoding": "gzip"}, 415),
        (b'{"findings": []}', {"content-type": "text/plain"}, 415),
    ],
)
async def test_evaluate_refuses_non_json_numbers_and_types_without_a_5xx(
    temporal_client: Client, content: bytes, headers: dict[str, str], status: int
):
    settings = make_settings(1)
    engine = EmbeddedEngine(settings.policy_dir)
    async with api_client(temporal_client, settings, None, engine) as http:
        response = await http.post(
            "/v1/policy/evaluate",
            content=content,
            headers={"content-type": "application/json", **headers},
        )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM


async def test_a_compressed_webhook_is_415_not_401(temporal_client: Client):
    settings = make_settings(1)
    body = b'{"x": 1}'
    headers = {
        **signed(body, settings.webhook_secret.get_secret_value()),
        "content-encoding": "gzip",
    }
    async with api_client(temporal_client, settings, None) as http:
        response = await http.post("/v1/webhooks/generic", content=body, headers=headers)
    assert response.status_code == 415
    assert "encoding" in response.json()["detail"]


def big_dry_run() -> bytes:
    """About 1 MB of findings: real parsing, validation and policy work."""
    finding = json.loads(
        (
            make_settings(1).policy_dir.parent
            / "examples/findings/traffic-controller-compromise.json"
        ).read_text()
    )
    findings = []
    for index in range(170):
        one = json.loads(json.dumps(finding))
        one["finding_info"]["uid"] = f"det-{index}"
        one["finding_info"]["desc"] = "x" * 5000
        findings.append(one)
    body = json.dumps({"findings": findings}).encode()
    assert 900_000 < len(body) < 1_000_000
    return body


async def test_dry_runs_run_in_worker_processes_with_a_bounded_queue(temporal_client: Client):
    """24 concurrent 1 MB dry runs all get an answer (a decision, or 503 to retry once the
    queue is full), /healthz answers meanwhile, and the work happens in another process.
    (How fast /healthz answers under that load: bench/front_door.py, against idle.)"""
    settings = make_settings(1, max_body_bytes=2 * 1024 * 1024)
    engine = EmbeddedEngine(settings.policy_dir)
    body = big_dry_run()
    app = create_app(build_context(settings, temporal_client, engine, ""))
    headers = {**reader_headers(settings), "content-type": "application/json"}
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=120) as http:
        runs = [
            asyncio.create_task(http.post("/v1/policy/evaluate", content=body, headers=headers))
            for _ in range(24)
        ]
        health = await http.get("/healthz")
        answers = await asyncio.gather(*runs)
    statuses = [r.status_code for r in answers]
    assert health.status_code == 200
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 18  # past 18 queued, callers are told to retry (503)
    decided = next(r for r in answers if r.status_code == 200).json()
    assert decided["dry_run"] is True
    assert decided["decision"]["verdict"] == "contain"
    workers = shared_dry_runs(settings.evaluate_concurrency)
    assert await workers.call(partial(os.getpid)) != os.getpid()


def raw_request(port: int, head: bytes, body: bytes = b"") -> tuple[bytes, int]:
    """Send a request head and then as much body as the server takes; its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sent = 0
        sock.settimeout(0.2)
        answer = b""
        while sent < len(body):
            try:
                answer = sock.recv(65536)
                break
            except TimeoutError:
                pass
            try:
                sock.sendall(body[sent : sent + 1 << 20])
            except OSError:
                break
            sent += 1 << 20
        sock.settimeout(30)
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer, sent


@pytest.mark.parametrize("path", ["/v1/incidents/inc-x/release", "/v1/policy/evaluate"])
async def test_a_200_mb_body_is_refused_before_it_is_read(temporal_client: Client, path: str):
    """Declared or chunked, 200 MB never reaches memory: the answer is 413 up front."""
    settings = make_settings(1)
    engine = EmbeddedEngine(settings.policy_dir)
    app = create_app(build_context(settings, temporal_client, engine, ""))
    async with serving(app) as url:
        port = int(url.rsplit(":", 1)[1])
        declared = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {200 * 1024 * 1024}\r\n\r\n"
        ).encode()
        answer, _ = await asyncio.to_thread(raw_request, port, declared)
        chunk = b"a" * (1 << 20)
        chunked_body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 200
        chunked = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            f"{'authorization: Bearer ' + token(settings, 'admin')['Authorization'][7:]}\r\n"
            "transfer-encoding: chunked\r\n\r\n"
        ).encode()
        chunked_answer, sent = await asyncio.to_thread(raw_request, port, chunked, chunked_body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert chunked_answer.startswith(b"HTTP/1.1 413"), chunked_answer[:200]
    assert sent < 64 * (1 << 20)  # cut off long before 200 MB (socket buffers hold a few)


async def test_a_client_trickling_its_headers_is_disconnected(temporal_client: Client):
    settings = make_settings(1, http_header_timeout_s=1.0)
    app = create_app(build_context(settings, temporal_client, None, ""))
    async with serving(app) as url:
        port = int(url.rsplit(":", 1)[1])

        def trickle() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                deadline = time.monotonic() + 20
                for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        return True
                    sock.settimeout(0.3)
                    try:
                        if sock.recv(1) == b"":
                            return True
                    except TimeoutError:
                        pass
                    if time.monotonic() > deadline:
                        return False
                return False

        assert await asyncio.to_thread(trickle), "the server kept a trickling client"


async def test_x_forwarded_for_counts_only_from_trusted_proxies(temporal_client: Client):
    """A loopback client naming an allowlisted address is still a loopback client."""
    sources = {"generic": {"auth": "hmac", "allow_ips": ["198.18.7.0/24"]}}
    answers = {}
    for trusted in ([], ["127.0.0.1/32"]):
        settings = make_settings(1, sources=sources, trusted_proxies=trusted)
        secret = settings.webhook_secret.get_secret_value()
        app = create_app(build_context(settings, temporal_client, None, secret))
        async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
            answers[bool(trusted)] = await http.post(
                "/v1/webhooks/generic",
                content=b"{}",
                headers={**signed(b"{}", secret), "x-forwarded-for": "198.18.7.9"},
            )
    assert answers[False].status_code == 403
    assert "127.0.0.1" in answers[False].json()["detail"]
    assert answers[True].status_code != 403  # believed: past the allowlist (a 422 here)


async def test_metrics_are_loopback_only_and_take_a_token_when_set(temporal_client: Client):
    settings = make_settings(1, metrics_token="scrape-me")  # noqa: S106 - a test token
    app = create_app(build_context(settings, temporal_client, None, ""))
    local = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    remote = httpx.ASGITransport(app=app, client=("198.18.0.9", 5000))
    async with httpx.AsyncClient(transport=local, base_url="http://b") as http:
        no_token = await http.get("/metrics")
        with_token = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    async with httpx.AsyncClient(transport=remote, base_url="http://b") as http:
        from_afar = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert no_token.status_code == 401
    assert with_token.status_code == 200
    assert "bulkhead_webhook_requests" in with_token.text
    assert from_afar.status_code == 403


async def test_docs_make_no_request_to_a_public_cdn(temporal_client: Client):
    """Swagger UI loads from a CDN, so /docs is off unless api_docs; the schema stays."""
    settings = make_settings(1)
    app = create_app(build_context(settings, temporal_client, None, ""))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as h:
        docs, redoc, schema = (
            await h.get("/docs"),
            await h.get("/redoc"),
            await h.get("/openapi.json"),
        )
    assert docs.status_code == redoc.status_code == 404
    assert schema.status_code == 200


def test_openapi_declares_how_every_operation_authenticates(temporal_client: Client):
    document = create_app(build_context(make_settings(1), temporal_client, None, "")).openapi()
    schemes = set(document["components"]["securitySchemes"])
    undeclared = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            security = operation.get("security")
            if security is None:
                undeclared.append(f"{method} {path}")
                continue
            assert {name for option in security for name in option} <= schemes
            if path.startswith("/v1/") and "/webhooks/" not in path:
                assert security == [{"bearerToken": []}], path
    assert undeclared == []
    assert document["paths"]["/healthz"]["get"]["security"] == []
