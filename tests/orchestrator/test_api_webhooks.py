"""POST /v1/webhooks/generic and GET /v1/incidents over the real app and dev server."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import free_port
from harness import (
    api_client,
    make_settings,
    running_worker,
    signed,
    wait_for,
)
from temporalio.client import Client
from webhook_helpers import PROBLEM, incident_count, unique_finding

from contracts.incident import IncidentStatus
from orchestrator.ingest.entity import incident_id_for
from orchestrator.temporal.client import connect
from orchestrator.wiring.worker import build_activities


async def test_signed_finding_is_accepted_and_contained(temporal_client: Client, traffic_lab):
    settings = make_settings(traffic_lab.port)
    activities = build_activities(settings)
    body = json.dumps(unique_finding()).encode()
    secret = settings.webhook_secret.get_secret_value()
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        response = await http.post(
            "/v1/webhooks/generic", content=body, headers=signed(body, secret)
        )
        assert response.status_code == 202, response.text
        (accepted,) = response.json()["findings"]
        assert accepted["duplicate"] is False
        incident_id = accepted["incident_id"]
        await wait_for(temporal_client, incident_id, lambda v: v.status is IncidentStatus.CONTAINED)
        shown = await http.get(f"/v1/incidents/{incident_id}")
    assert shown.status_code == 200
    incident = shown.json()
    assert incident["status"] == "contained"
    assert incident["decision"]["policy_version"].startswith("sha256:")
    assert incident["steps"][0]["state"] == "verified"
    assert incident["steps"][0]["receipt"]["after"]["mode"] == "flash"
    assert incident["findings"][0]["finding_info"]["uid"] == accepted["finding_uid"]


async def test_redelivered_webhook_id_is_a_duplicate(temporal_client: Client, traffic_lab):
    settings = make_settings(traffic_lab.port)
    body = json.dumps(unique_finding()).encode()
    headers = signed(body, settings.webhook_secret.get_secret_value(), msg_id="msg_same")
    async with api_client(temporal_client, settings, None) as http:
        first = await http.post("/v1/webhooks/generic", content=body, headers=headers)
        again = await http.post("/v1/webhooks/generic", content=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["findings"][0]["duplicate"] is False
    assert again.json()["findings"][0]["duplicate"] is True


async def test_bad_signature_is_401_and_starts_nothing(temporal_client: Client):
    settings = make_settings(1)
    finding = unique_finding()
    body = json.dumps(finding).encode()
    headers = signed(body, "whsec_" + "A" * 43 + "=")  # someone else's key
    async with api_client(temporal_client, settings, None) as http:
        response = await http.post("/v1/webhooks/generic", content=body, headers=headers)
        unsigned = await http.post(
            "/v1/webhooks/generic", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert "signature" in response.json()["detail"]
    assert unsigned.status_code == 401
    assert "missing header" in unsigned.json()["detail"]
    assert (
        await incident_count(temporal_client, incident_id_for(finding["resources"][0]["uid"])) == 0
    )


@pytest.mark.parametrize(
    ("body", "content_type", "status", "needle"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"\xff\xfe", "application/json", 401, "UTF-8"),
        (b"{}", "text/plain", 415, "application/json"),
    ],
)
async def test_malformed_requests_get_problem_json(
    temporal_client: Client, body: bytes, content_type: str, status: int, needle: str
):
    settings = make_settings(1)
    secret = settings.webhook_secret.get_secret_value()
    headers = {**signed(b"", secret), "content-type": content_type}
    if status != 401:
        headers = {**signed(body, secret), "content-type": content_type}
    async with api_client(temporal_client, settings, None) as http:
        response = await http.post("/v1/webhooks/generic", content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert needle in response.json()["detail"]


async def test_schema_invalid_finding_is_422_naming_each_field(temporal_client: Client):
    settings = make_settings(1)
    finding = unique_finding(severity_id="very bad")
    del finding["metadata"]
    body = json.dumps(finding).encode()
    async with api_client(temporal_client, settings, None) as http:
        response = await http.post(
            "/v1/webhooks/generic",
            content=body,
            headers=signed(body, settings.webhook_secret.get_secret_value()),
        )
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"/severity_id", "/metadata"}


async def test_unknown_source_and_oversized_body(temporal_client: Client):
    settings = make_settings(1, max_body_bytes=64)
    body = json.dumps(unique_finding()).encode()
    headers = signed(body, settings.webhook_secret.get_secret_value())
    async with api_client(temporal_client, settings, None) as http:
        unknown = await http.post("/v1/webhooks/nosuchsiem", content=b"{}", headers=headers)
        large = await http.post("/v1/webhooks/generic", content=body, headers=headers)
        # A body over the limit is refused before routing, so before anything is read.
        large_unknown = await http.post("/v1/webhooks/nosuchsiem", content=body, headers=headers)
    assert unknown.status_code == 404
    assert "nosuchsiem" in unknown.json()["detail"]
    assert large.status_code == large_unknown.status_code == 413
    assert large.headers["content-type"] == PROBLEM


async def test_unreachable_temporal_is_503_with_retry_after():
    """Nothing listens on the port: the finding is not durable, so no 202."""
    settings = make_settings(1, temporal_address=f"127.0.0.1:{free_port()}")
    client = await connect(settings, lazy=True)
    body = json.dumps(unique_finding()).encode()
    async with api_client(client, settings, None) as http:
        response = await http.post(
            "/v1/webhooks/generic",
            content=body,
            headers=signed(body, settings.webhook_secret.get_secret_value()),
        )
        ready = await http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "not durable" in response.json()["detail"]
    assert ready.status_code == 503
    assert ready.json()["checks"]["temporal"]["ok"] is False


async def test_readyz_needs_a_polling_worker(temporal_client: Client, traffic_lab):
    settings = make_settings(traffic_lab.port)
    activities = build_activities(settings)
    async with api_client(temporal_client, settings, activities) as http:
        before = await http.get("/readyz")
        async with running_worker(temporal_client, settings, activities):
            # The worker's first long-poll reaches the server a moment after it starts.
            for _ in range(100):
                after = await http.get("/readyz")
                if after.status_code == 200:
                    break
                await asyncio.sleep(0.1)
    assert before.status_code == 503
    assert "worker" in before.json()["detail"]
    assert after.status_code == 200
    assert after.json()["checks"]["policy"]["version"].startswith("sha256:")


async def test_unknown_incident_is_404(temporal_client: Client):
    async with api_client(temporal_client, make_settings(1), None) as http:
        response = await http.get("/v1/incidents/inc-nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
