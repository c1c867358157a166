"""Per-source authentication (bearer, URL token, IP allowlist) and the route's OpenAPI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import (
    api_client,
    make_settings,
    signed,
)
from temporalio.client import Client
from webhook_helpers import PROBLEM, TOKENS, mixed_auth_settings, post, sample_path, terminate

from orchestrator.api.app import create_app
from orchestrator.api.context import ApiContext
from orchestrator.ingest.connectors import CONNECTORS
from orchestrator.ingest.entity import entity_of, incident_id_for

# --- bearer, url-token, allowlist -----------------------------------------------------------


async def test_bearer_source_needs_its_token_and_dedupes_identical_bodies(
    temporal_client: Client,
):
    settings = mixed_auth_settings()
    body = sample_path("falco").read_bytes()
    json_type = {"content-type": "application/json"}
    incident_id = incident_id_for(entity_of(CONNECTORS["falco"].normalize(json.loads(body))[0]))
    await terminate(temporal_client, incident_id)
    async with api_client(temporal_client, settings, None) as http:
        missing = await http.post("/v1/webhooks/falco", content=body, headers=json_type)
        wrong = await http.post(
            "/v1/webhooks/falco",
            content=body,
            headers={**json_type, "authorization": "Bearer " + "z" * 40},
        )
        # The old token of a rotation still works; then the same body again is a duplicate.
        headers = {**json_type, "authorization": f"Bearer old-{TOKENS['falco']}"}
        first = await http.post("/v1/webhooks/falco", content=body, headers=headers)
        again = await http.post("/v1/webhooks/falco", content=body, headers=headers)
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.json()["detail"] == "the bearer token is not accepted"
    assert first.status_code == again.status_code == 202
    assert first.json()["findings"][0]["duplicate"] is False
    assert again.json()["findings"][0]["duplicate"] is True
    await terminate(temporal_client, incident_id)


async def test_url_token_source_reads_the_query_token(temporal_client: Client):
    settings = mixed_auth_settings()
    body = sample_path("splunk").read_bytes()
    json_type = {"content-type": "application/json"}
    signed_only = signed(body, settings.webhook_secret.get_secret_value())
    async with api_client(temporal_client, settings, None) as http:
        wrong = await http.post(
            "/v1/webhooks/splunk", content=body, headers=json_type, params={"token": "nope"}
        )
        hmac_instead = await http.post("/v1/webhooks/splunk", content=body, headers=signed_only)
        right = await http.post(
            "/v1/webhooks/splunk",
            content=body,
            headers=json_type,
            params={"token": TOKENS["splunk"]},
        )
    assert wrong.status_code == 401
    assert hmac_instead.status_code == 401
    assert "missing query parameter: token" in hmac_instead.json()["detail"]
    assert right.status_code == 202, right.text
    await terminate(temporal_client, right.json()["findings"][0]["incident_id"])


async def test_a_delivery_id_longer_than_documented_is_refused_not_replaced(
    temporal_client: Client,
):
    """The OpenAPI document caps `webhook-id` and `idempotency-key` at 256 characters. A
    longer one is a 400 naming the header, on a signed source (where the signature names
    the delivery) as on a bearer one (where the body's digest would otherwise stand in):
    a 202 would tell the sender its id was taken. At the cap, the request goes through."""
    settings = mixed_auth_settings()
    secret = settings.webhook_secret.get_secret_value()
    body = sample_path("generic").read_bytes()
    falco = sample_path("falco").read_bytes()
    bearer = {"content-type": "application/json", "authorization": f"Bearer {TOKENS['falco']}"}
    async with api_client(temporal_client, settings, None) as http:
        signed_long = await http.post(
            "/v1/webhooks/generic",
            content=body,
            headers={**signed(body, secret), "idempotency-key": "k" * 257},
        )
        bearer_long = await http.post(
            "/v1/webhooks/falco", content=falco, headers={**bearer, "webhook-id": "w" * 257}
        )
        at_cap = await http.post(
            "/v1/webhooks/falco", content=falco, headers={**bearer, "webhook-id": "w" * 256}
        )
    for refused, header in ((signed_long, "idempotency-key"), (bearer_long, "webhook-id")):
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["detail"] == f"header {header} is 257 characters; at most 256"
    assert at_cap.status_code == 202, at_cap.text
    for finding in at_cap.json()["findings"]:
        await terminate(temporal_client, finding["incident_id"])


@pytest.mark.parametrize(("networks", "status"), [(["10.0.0.0/8"], 403), (["127.0.0.0/8"], 422)])
async def test_ip_allowlist_is_checked_before_anything_else(
    temporal_client: Client, networks, status
):
    """The in-process client is 127.0.0.1; a 422 shows it got past the allowlist."""
    settings = make_settings(1, sources={"wazuh": {"allow_ips": networks}})
    body = b"{}"
    async with api_client(temporal_client, settings, None) as http:
        response = await post(http, "wazuh", body, settings)
    assert response.status_code == status
    if status == 403:
        assert response.json()["detail"] == (
            "client address 127.0.0.1 is not allowed to post to this source"
        )


def test_config_naming_an_unknown_source_fails_at_startup():
    settings = make_settings(1, sources={"splnuk": {}})
    context = ApiContext.__new__(ApiContext)
    context.settings = settings
    with pytest.raises(ValueError, match="unknown webhook source"):
        create_app(context)


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


async def test_openapi_documents_the_webhook_route_with_an_example_per_source(
    temporal_client: Client,
):
    async with api_client(temporal_client, make_settings(1), None) as http:
        document = (await http.get("/openapi.json")).json()
    operation = document["paths"]["/v1/webhooks/{source}"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert sorted(examples) == sorted(CONNECTORS)
    for source, example in examples.items():
        # FastAPI leaves nulls out of the OpenAPI document (the Sentinel sample has some).
        assert example["value"] == without_nulls(json.loads(sample_path(source).read_text()))
    assert "application/x-ndjson" in operation["requestBody"]["content"]
    assert {"202", "400", "401", "403", "404", "413", "415", "422", "503"} <= set(
        operation["responses"]
    )
    assert set(document["components"]["securitySchemes"]) == {
        "standardWebhooks",
        "bearerToken",
        "urlToken",
        "metricsToken",
    }
    for path in document["paths"].values():
        for method in path.values():
            assert PROBLEM in method["responses"]["default"]["content"]
            assert "HTTPValidationError" not in json.dumps(method["responses"])
