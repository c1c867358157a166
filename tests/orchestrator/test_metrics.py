"""GET /metrics: webhook requests by source and outcome, latency, one registry per app."""

from __future__ import annotations

import json
import uuid

from harness import api_client, example_finding, make_settings, signed
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from orchestrator.metrics import Metrics


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_webhook_outcomes_are_counted_by_source(temporal_client: Client):
    settings = make_settings(1)
    secret = settings.webhook_secret.get_secret_value()
    finding = example_finding(resources=[{"uid": f"tsc-metrics-{uuid.uuid4().hex[:6]}"}])
    body = json.dumps(finding).encode()
    async with api_client(temporal_client, settings, None) as http:
        headers = signed(body, secret, msg_id="msg_metrics")
        await http.post("/v1/webhooks/generic", content=body, headers=headers)  # accepted
        await http.post("/v1/webhooks/generic", content=body, headers=headers)  # duplicate
        await http.post("/v1/webhooks/wazuh", content=body, headers=signed(body, "whsec_AAAA"))
        await http.post("/v1/webhooks/wazuh", content=b"{}", headers=signed(b"{}", secret))
        await http.post("/v1/webhooks/nosuch", content=body, headers=headers)
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    counts = samples(response.text, "bulkhead_webhook_requests_total")
    assert counts == {
        (("outcome", "accepted"), ("source", "generic")): 1.0,
        (("outcome", "duplicate"), ("source", "generic")): 1.0,
        (("outcome", "unauthorized"), ("source", "wazuh")): 1.0,
        (("outcome", "invalid"), ("source", "wazuh")): 1.0,
        # An unknown source is one label value, whatever the path: no unbounded series.
        (("outcome", "not_found"), ("source", "unknown")): 1.0,
    }
    latency = samples(response.text, "bulkhead_webhook_request_duration_seconds_count")
    assert latency[(("source", "generic"),)] == 2.0
    assert latency[(("source", "unknown"),)] == 1.0
    await temporal_client.get_workflow_handle(f"inc-{finding['resources'][0]['uid']}").terminate(
        "test cleanup"
    )


async def test_each_app_counts_on_its_own_registry(temporal_client: Client):
    async with (
        api_client(temporal_client, make_settings(1), None) as first,
        api_client(temporal_client, make_settings(1), None) as second,
    ):
        await first.post("/v1/webhooks/generic", content=b"{}")
        one = (await first.get("/metrics")).text
        other = (await second.get("/metrics")).text
    assert samples(one, "bulkhead_webhook_requests_total")
    assert not samples(other, "bulkhead_webhook_requests_total")


def test_metrics_are_extended_by_adding_attributes_on_the_registry():
    """How the findings/decisions/steps metrics will be added."""

    class MoreMetrics(Metrics):
        def __init__(self) -> None:
            super().__init__()
            self.decisions = Counter(
                "bulkhead_decisions", "Policy decisions.", ["verdict"], registry=self.registry
            )

    metrics = MoreMetrics()
    metrics.decisions.labels("contain").inc()
    text = metrics.exposition().decode()
    assert 'bulkhead_decisions_total{verdict="contain"} 1.0' in text
    assert "bulkhead_webhook_requests_total" in text
