"""10,000 forged webhook requests start zero workflows.

Every forgery carries a real vendor sample, so a request that slipped past
authentication would be accepted and start an incident. Each one is refused with 401
(or 403 from an IP allowlist) as problem+json. Two counts make "zero" meaningful: a fake
deliverer that would count any finding handed on (all 10,000 requests), and the real
Temporal server's count of workflows on the test's task queue (a smaller sample through
the real deliverer), which a genuine request then moves to exactly one.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from harness import api_client, example_finding, make_settings
from temporalio.client import Client

from orchestrator.config import REPO_ROOT, Settings
from orchestrator.ingest.signatures import TOLERANCE_S, sign
from orchestrator.temporal.incidents import IncidentClient

FORGED = 10_000
FORGED_THROUGH_TEMPORAL = 500
CONCURRENCY = 50
PROBLEM = "application/problem+json"

KEY_NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
KEY_OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()  # rotated out: no longer accepted
KEY_ATTACKER = "whsec_" + base64.b64encode(b"x" * 32).decode()
TOKEN = "bearer-token-" + "k" * 24
URL_TOKEN = "url-token-" + "u" * 24
SOURCES = {
    "wazuh": {"secrets": [KEY_NEW]},
    "falco": {"auth": "bearer", "tokens": [TOKEN]},
    "alertmanager": {"auth": "bearer", "tokens": [TOKEN]},
    "splunk": {"auth": "url-token", "tokens": [URL_TOKEN]},
    "sentinel": {"auth": "bearer", "tokens": [TOKEN], "allow_ips": ["10.20.0.0/16"]},
}
SAMPLES = {
    source: (
        REPO_ROOT
        / "examples"
        / "findings"
        / ("traffic-controller-compromise.json" if source == "generic" else f"{source}.json")
    ).read_bytes()
    for source in ("generic", "wazuh", "falco", "alertmanager", "splunk", "sentinel", "elastic")
}

Request = tuple[str, bytes, dict[str, str], dict[str, str]]  # source, body, headers, params
JSON_TYPE = {"content-type": "application/json"}


def _signed(body: bytes, key: str, *, skew: int = 0, msg_id: str | None = None) -> dict[str, str]:
    headers = sign(
        body, key, msg_id=msg_id or f"msg_{uuid.uuid4().hex}", timestamp=int(time.time()) + skew
    )
    return {**headers, **JSON_TYPE}


def _hmac_forgeries(source: str, key: str, body: bytes) -> list[Callable[[], Request]]:
    """Forgeries against an HMAC source whose accepted key is `key`."""

    def wrong_key() -> Request:
        return source, body, _signed(body, KEY_ATTACKER), {}

    def rotated_out_key() -> Request:
        return source, body, _signed(body, KEY_OLD), {}

    # Well past the tolerance: a timestamp 301 s ahead is inside it again a second later.
    def stale() -> Request:
        return source, body, _signed(body, key, skew=-(TOLERANCE_S + 10)), {}

    def future() -> Request:
        return source, body, _signed(body, key, skew=TOLERANCE_S + 10), {}

    def tampered_body() -> Request:
        headers = _signed(body, key)
        return source, body.replace(b"198.18.", b"198.19.", 1) + b" ", headers, {}

    def tampered_id() -> Request:
        headers = _signed(body, key)
        headers["webhook-id"] += "x"
        return source, body, headers, {}

    def tampered_timestamp() -> Request:
        headers = _signed(body, key)
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
        return source, body, headers, {}

    def missing_signature() -> Request:
        headers = _signed(body, key)
        del headers["webhook-signature"]
        return source, body, headers, {}

    def missing_everything() -> Request:
        return source, body, dict(JSON_TYPE), {}

    def garbage_signature() -> Request:
        headers = _signed(body, key)
        headers["webhook-signature"] = "v1," + base64.b64encode(uuid.uuid4().bytes * 2).decode()
        return source, body, headers, {}

    def other_version() -> Request:
        headers = _signed(body, key)
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
        return source, body, headers, {}

    def bearer_instead() -> Request:
        return source, body, {**JSON_TYPE, "authorization": f"Bearer {TOKEN}"}, {}

    return [
        wrong_key,
        rotated_out_key,
        stale,
        future,
        tampered_body,
        tampered_id,
        tampered_timestamp,
        missing_signature,
        missing_everything,
        garbage_signature,
        other_version,
        bearer_instead,
    ]


def _token_forgeries() -> list[Callable[[], Request]]:
    def no_token(source: str) -> Callable[[], Request]:
        return lambda: (source, SAMPLES[source], dict(JSON_TYPE), {})

    def wrong_bearer(source: str) -> Callable[[], Request]:
        wrong = {**JSON_TYPE, "authorization": f"Bearer {TOKEN[:-1]}Z"}
        return lambda: (source, SAMPLES[source], wrong, {})

    def bearer_in_query(source: str) -> Callable[[], Request]:
        return lambda: (source, SAMPLES[source], dict(JSON_TYPE), {"token": TOKEN})

    def signed_instead(source: str) -> Callable[[], Request]:
        return lambda: (source, SAMPLES[source], _signed(SAMPLES[source], KEY_NEW), {})

    def url_token_wrong() -> Request:
        return "splunk", SAMPLES["splunk"], dict(JSON_TYPE), {"token": URL_TOKEN + "!"}

    def url_token_as_bearer() -> Request:
        headers = {**JSON_TYPE, "authorization": f"Bearer {URL_TOKEN}"}
        return "splunk", SAMPLES["splunk"], headers, {}

    def right_token_wrong_address() -> Request:
        headers = {**JSON_TYPE, "authorization": f"Bearer {TOKEN}"}
        return "sentinel", SAMPLES["sentinel"], headers, {}

    per_source = [
        make(source)
        for source in ("falco", "alertmanager")
        for make in (no_token, wrong_bearer, bearer_in_query, signed_instead)
    ]
    return [*per_source, url_token_wrong, url_token_as_bearer, right_token_wrong_address]


def forgeries(settings: Settings) -> Iterator[Request]:
    """An endless round-robin over every kind of forgery, against every source."""
    global_secret = settings.webhook_secret.get_secret_value()
    kinds = (
        _hmac_forgeries("generic", global_secret, SAMPLES["generic"])
        + _hmac_forgeries("elastic", global_secret, SAMPLES["elastic"])
        + _hmac_forgeries("wazuh", KEY_NEW, SAMPLES["wazuh"])
        + _token_forgeries()
    )
    for make in itertools.cycle(kinds):
        yield make()


async def _post(http: httpx.AsyncClient, request: Request) -> httpx.Response:
    source, body, headers, params = request
    return await http.post(f"/v1/webhooks/{source}", content=body, headers=headers, params=params)


async def _flood(http: httpx.AsyncClient, requests: Iterator[Request], count: int) -> list[int]:
    statuses: list[int] = []
    for start in range(0, count, CONCURRENCY):
        batch = [next(requests) for _ in range(min(CONCURRENCY, count - start))]
        responses = await asyncio.gather(*(_post(http, r) for r in batch))
        for response in responses:
            assert response.headers["content-type"] == PROBLEM, response.text
        statuses += [r.status_code for r in responses]
    return statuses


def _counter(text: str, outcome: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("bulkhead_webhook_requests_total{") and f'outcome="{outcome}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_ten_thousand_forgeries_hand_nothing_on(
    temporal_client: Client, monkeypatch: pytest.MonkeyPatch
):
    settings = make_settings(1, sources=SOURCES)
    delivered: list[Any] = []

    async def counting_deliverer(*args: Any, **kwargs: Any) -> None:
        delivered.append(args)

    # Every finding the API hands on goes through the typed client's signal-with-start.
    monkeypatch.setattr(IncidentClient, "deliver_many", counting_deliverer)
    started = time.perf_counter()
    async with api_client(temporal_client, settings, None) as http:
        statuses = await _flood(http, forgeries(settings), FORGED)
        handed_on = len(delivered)
        metrics = (await http.get("/metrics")).text
        # The same app does hand on a genuine request: the counter is wired.
        body = SAMPLES["generic"]
        genuine = await _post(
            http, ("generic", body, _signed(body, settings.webhook_secret.get_secret_value()), {})
        )
    elapsed = time.perf_counter() - started
    assert len(statuses) == FORGED
    assert set(statuses) == {401, 403}
    assert 0 < statuses.count(403) < FORGED // 10  # only the allowlist forgery is a 403
    assert handed_on == 0, f"{handed_on} forged findings were handed on"
    assert _counter(metrics, "unauthorized") + _counter(metrics, "forbidden") == FORGED
    assert genuine.status_code == 202, genuine.text
    assert len(delivered) == 1
    print(f"{FORGED} forged requests in {elapsed:.1f} s")


async def test_forgeries_through_real_temporal_start_no_workflow(temporal_client: Client):
    settings = make_settings(1, sources=SOURCES)
    queue = f"TaskQueue = '{settings.task_queue}'"
    finding = example_finding(resources=[{"uid": f"tsc-forge-{uuid.uuid4().hex[:8]}"}])
    body = json.dumps(finding).encode()
    secret = settings.webhook_secret.get_secret_value()
    async with api_client(temporal_client, settings, None) as http:
        statuses = await _flood(http, forgeries(settings), FORGED_THROUGH_TEMPORAL)
        headers = _signed(body, secret, msg_id="msg_genuine")
        genuine = await _post(http, ("generic", body, headers, {}))
        # Replays of the genuine request, as is and with a forged body: nothing new starts.
        replays = [await _post(http, ("generic", body, headers, {})) for _ in range(20)]
        forged_replay = await _post(http, ("generic", body + b" ", headers, {}))
    assert set(statuses) <= {401, 403}
    assert genuine.status_code == 202, genuine.text
    assert all(r.json()["findings"][0]["duplicate"] for r in replays)
    assert forged_replay.status_code == 401
    incident_id = genuine.json()["findings"][0]["incident_id"]
    # Visibility is eventually consistent: wait for the genuine start to show, then count.
    for _ in range(100):
        if (await temporal_client.count_workflows(queue)).count == 1:
            break
        await asyncio.sleep(0.1)
    assert (await temporal_client.count_workflows(queue)).count == 1
    assert [w.id async for w in temporal_client.list_workflows(queue)] == [incident_id]
    await temporal_client.get_workflow_handle(incident_id).terminate("test cleanup")
