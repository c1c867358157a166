"""Temporal over TLS (#16): mTLS and API keys, through a TLS-terminating loopback proxy.

The dev server speaks plaintext only, so a proxy the test starts (tests/tlsproxy.py)
terminates TLS with a certificate for `temporal.test` from a CA the test made, and relays
to it. The Bulkhead client (`orchestrator.temporal.client.connect`) dials 127.0.0.1 with
temporal_tls_server_name = "temporal.test". For API keys the proxy also terminates HTTP/2
(tests/grpcgate.py) and refuses calls whose `authorization` metadata is not the key.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from certs import Issued, TestCA
from harness import api_client, example_finding, make_settings, running_worker, signed, wait_for
from pydantic import ValidationError
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from tlsproxy import TlsProxy, server_context

from contracts.incident import IncidentStatus
from orchestrator.config import Settings
from orchestrator.temporal.client import connect, tls_config
from orchestrator.wiring.worker import build_activities, workflow_task_slots

SERVER_NAME = "temporal.test"
API_KEY = "bk_test_" + uuid.uuid4().hex  # a made-up key: the gate only compares it
WORKFLOW_SERVICE = "/temporal.api.workflowservice.v1.WorkflowService/"


@dataclass(frozen=True)
class Pki:
    ca: TestCA
    server: Issued  # for temporal.test, from ca
    client: Issued  # CN bulkhead-worker, clientAuth, from ca
    other_ca: TestCA  # trusted by nobody here


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    ca = TestCA(base / "ca")
    return Pki(
        ca=ca,
        server=ca.issue(SERVER_NAME),
        client=ca.issue("bulkhead-worker", client=True),
        other_ca=TestCA(base / "other", name="Another CA"),
    )


def dev_server(client: Client) -> str:
    return client.service_client.config.target_host


@pytest.fixture
async def mtls_proxy(pki: Pki, temporal_client: Client):
    """TLS with a client certificate from the test CA required; bytes relayed as they are."""
    context = server_context(pki.ca, pki.server, client_certs=True)
    async with TlsProxy(dev_server(temporal_client), context) as proxy:
        yield proxy


@pytest.fixture
async def key_proxy(pki: Pki, temporal_client: Client):
    """TLS without client certificates; each call must carry the API key."""
    # Imported here: under CI=true the conftest turns this skip into a failure.
    grpcgate = pytest.importorskip("grpcgate", reason="h2 (a test dependency) is missing")
    gate = grpcgate.ApiKeyGate(API_KEY)
    context = server_context(pki.ca, pki.server, client_certs=False)
    async with TlsProxy(dev_server(temporal_client), context, bridge=gate) as proxy:
        yield proxy, gate


def through(proxy: TlsProxy, pki: Pki, lab_port: int = 0, **overrides: Any) -> Settings:
    """Settings that reach Temporal only through the proxy, trusting the test CA."""
    overrides.setdefault("temporal_tls_ca", pki.ca.pem)
    overrides.setdefault("temporal_tls_server_name", SERVER_NAME)
    return make_settings(lab_port, temporal_address=proxy.address, **overrides)


def unique_finding() -> dict[str, Any]:
    """The demo finding about tsc-0001, under an incident key of this test's own."""
    finding = example_finding()
    finding["resources"] = [{"uid": f"tsc-0001-{uuid.uuid4().hex[:6]}"}, {"uid": "tsc-0001"}]
    finding["finding_info"] = {"uid": f"det-{uuid.uuid4().hex}", "title": "tls test"}
    return finding


async def contain_through_two_clients(settings: Settings) -> dict[str, Any]:
    """A worker and an API, each with its own Temporal connection (as two processes
    have), contain a finding posted to the API; returns the incident the API shows."""
    worker_client = await connect(settings)
    api_temporal = await connect(settings)
    activities = build_activities(settings)
    body = json.dumps(unique_finding()).encode()
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    async with (
        running_worker(worker_client, settings, activities) as worker,
        api_client(api_temporal, settings, activities) as http,
    ):
        limits = worker.config()
        assert limits.get("max_concurrent_activities") == settings.max_concurrent_activities
        response = await http.post(
            "/v1/webhooks/generic", content=body, headers=signed(body, secret)
        )
        assert response.status_code == 202, response.text
        incident_id = response.json()["findings"][0]["incident_id"]
        await wait_for(api_temporal, incident_id, lambda v: v.status is IncidentStatus.CONTAINED)
        shown = await http.get(f"/v1/incidents/{incident_id}")
    assert shown.status_code == 200, shown.text
    incident: dict[str, Any] = shown.json()
    return incident


async def test_mtls_worker_and_api_contain_through_the_proxy(mtls_proxy, pki, traffic_lab):
    settings = through(
        mtls_proxy,
        pki,
        traffic_lab.port,
        temporal_tls_cert=pki.client.cert,
        temporal_tls_key=pki.client.key,
        max_concurrent_activities=3,
        max_concurrent_workflow_tasks=2,
    )
    incident = await contain_through_two_clients(settings)
    assert incident["status"] == "contained"
    assert incident["steps"][0]["state"] == "verified"
    assert incident["steps"][0]["receipt"]["after"]["mode"] == "flash"
    # Both connections came through the proxy, each presenting the test client certificate.
    assert mtls_proxy.refused == []
    assert mtls_proxy.errors == []
    assert mtls_proxy.upstream_connections >= 2
    assert {h.peer for h in mtls_proxy.handshakes} == {"bulkhead-worker"}


async def describe_namespace(settings: Settings) -> str:
    client = await connect(settings)
    request = DescribeNamespaceRequest(namespace=settings.temporal_namespace)
    answer = await client.workflow_service.describe_namespace(request)
    return answer.namespace_info.name


async def test_a_server_certificate_from_another_ca_is_refused(mtls_proxy, pki):
    settings = through(
        mtls_proxy,
        pki,
        temporal_tls_ca=pki.other_ca.pem,
        temporal_tls_cert=pki.client.cert,
        temporal_tls_key=pki.client.key,
    )
    # rustls (temporalio's core) names the reason: the chain ends at no trusted root.
    with pytest.raises(RuntimeError, match="InvalidCertificate") as refused:
        await describe_namespace(settings)
    assert "UnknownIssuer" in str(refused.value)
    assert mtls_proxy.upstream_connections == 0  # nothing reached Temporal


async def test_without_the_server_name_the_address_must_match_the_certificate(mtls_proxy, pki):
    settings = through(
        mtls_proxy,
        pki,
        temporal_tls_server_name=None,
        temporal_tls_cert=pki.client.cert,
        temporal_tls_key=pki.client.key,
    )
    with pytest.raises(RuntimeError, match="InvalidCertificate") as refused:
        await describe_namespace(settings)
    assert "NotValidForName" in str(refused.value)
    assert mtls_proxy.upstream_connections == 0


async def test_a_client_without_a_certificate_is_refused_by_the_mtls_proxy(mtls_proxy, pki):
    settings = through(mtls_proxy, pki)
    with pytest.raises(RuntimeError):
        await describe_namespace(settings)
    # The client learns of it as a closed connection; the proxy says why.
    refusal = await mtls_proxy.first_refusal()
    assert "did not return a certificate" in (refusal.error or "")
    assert mtls_proxy.upstream_connections == 0


async def test_the_api_key_passes_the_gate_for_worker_and_api(key_proxy, pki, traffic_lab):
    proxy, gate = key_proxy
    settings = through(proxy, pki, traffic_lab.port, temporal_api_key=API_KEY)
    assert await describe_namespace(settings) == settings.temporal_namespace
    incident = await contain_through_two_clients(settings)
    assert incident["status"] == "contained"
    paths = {call.path.removeprefix(WORKFLOW_SERVICE) for call in gate.calls}
    assert {"DescribeNamespace", "PollWorkflowTaskQueue", "SignalWithStartWorkflowExecution"} <= (
        paths
    )
    assert {call.authorization for call in gate.calls} == {f"Bearer {API_KEY}"}
    assert not [call for call in gate.calls if call.refused]
    assert proxy.errors == []


@pytest.mark.parametrize(
    ("api_key", "reason"),
    [(None, "no API key"), ("bk_test_wrong", "invalid API key")],
)
async def test_a_missing_or_wrong_api_key_is_refused(key_proxy, pki, api_key, reason):
    proxy, gate = key_proxy
    settings = through(proxy, pki, temporal_api_key=api_key)
    with pytest.raises(RuntimeError, match=reason) as refused:
        await describe_namespace(settings)
    assert "Unauthenticated" in str(refused.value)
    assert gate.calls, "no call reached the gate"
    assert all(call.refused for call in gate.calls)
    expected = None if api_key is None else f"Bearer {api_key}"
    assert {call.authorization for call in gate.calls} == {expected}


def test_tls_is_on_with_an_api_key_or_any_tls_material(tmp_path: Path):
    assert tls_config(Settings(state_dir=tmp_path)) is None  # the local dev server
    assert tls_config(Settings(state_dir=tmp_path, temporal_api_key="k")) is not None
    named = tls_config(Settings(state_dir=tmp_path, temporal_tls_server_name=SERVER_NAME))
    assert named is not None
    assert named.domain == SERVER_NAME
    assert named.server_root_ca_cert is None  # no CA given: the system's roots


def test_a_client_certificate_without_its_key_is_a_clear_error(pki, tmp_path: Path):
    settings = Settings(state_dir=tmp_path, temporal_tls_cert=pki.client.cert)
    with pytest.raises(RuntimeError, match="temporal_tls_cert and temporal_tls_key go together"):
        tls_config(settings)


def test_worker_limits_are_validated(tmp_path: Path):
    # temporalio needs two workflow-task slots while workflows are cached.
    with pytest.raises(ValidationError, match="max_concurrent_workflow_tasks"):
        Settings(state_dir=tmp_path, max_concurrent_workflow_tasks=1)
    with pytest.raises(ValidationError, match="max_concurrent_activities"):
        Settings(state_dir=tmp_path, max_concurrent_activities=0)


def test_settings_come_from_bulkhead_environment(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("BULKHEAD_TEMPORAL_API_KEY", API_KEY)
    monkeypatch.setenv("BULKHEAD_TEMPORAL_TLS_SERVER_NAME", SERVER_NAME)
    monkeypatch.setenv("BULKHEAD_MAX_CONCURRENT_ACTIVITIES", "7")
    monkeypatch.setenv("BULKHEAD_MAX_CONCURRENT_WORKFLOW_TASKS", "4")
    settings = Settings(state_dir=tmp_path)
    assert settings.temporal_api_key is not None
    assert settings.temporal_api_key.get_secret_value() == API_KEY
    assert API_KEY not in repr(settings)  # a SecretStr: never in a log line
    assert settings.temporal_tls_server_name == SERVER_NAME
    assert (settings.max_concurrent_activities, settings.max_concurrent_workflow_tasks) == (7, 4)


def test_workflow_task_slots_default_to_two_per_core_and_the_setting_wins(
    monkeypatch, tmp_path: Path
):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert workflow_task_slots(Settings(state_dir=tmp_path)) == 4
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert workflow_task_slots(Settings(state_dir=tmp_path)) == 32
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert workflow_task_slots(Settings(state_dir=tmp_path)) == 4
    chosen = Settings(state_dir=tmp_path, max_concurrent_workflow_tasks=100)
    assert workflow_task_slots(chosen) == 100
