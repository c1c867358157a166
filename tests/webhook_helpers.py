"""Shared by the webhook route tests (tests/orchestrator/test_api_webhook*.py)."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import httpx
from harness import (
    example_finding,
    make_settings,
    signed,
)
from temporalio.client import Client
from temporalio.service import RPCError

from orchestrator.config import REPO_ROOT, Settings

PROBLEM = "application/problem+json"


def unique_finding(**changes: object) -> dict[str, object]:
    """The demo finding about a controller nobody else's test touches."""
    asset = f"tsc-0001-{uuid.uuid4().hex[:6]}"
    finding = example_finding(resources=[{"uid": "tsc-0001"}, {"uid": asset}])
    finding["finding_info"] = {"uid": f"det-{uuid.uuid4().hex}", "title": "test"}
    finding.update(changes)
    # First resource decides the incident key; keep it unique per test.
    finding["resources"] = [{"uid": asset}, {"uid": "tsc-0001"}]
    return finding


async def incident_count(client: Client, incident_id: str) -> int:
    query = f"WorkflowId = '{incident_id}'"
    return len([w async for w in client.list_workflows(query)])


FIXTURES = REPO_ROOT / "tests" / "fixtures" / "siem"
TOKENS = {source: f"{source}-token-{'x' * 24}" for source in ("splunk", "elastic", "falco")}


def sample_path(source: str) -> Path:
    name = "traffic-controller-compromise.json" if source == "generic" else f"{source}.json"
    return REPO_ROOT / "examples" / "findings" / name


def mixed_auth_settings(**overrides: object) -> Settings:
    """Splunk by URL token, Elastic and Falco by bearer token, the rest HMAC-signed."""
    sources = {
        "splunk": {"auth": "url-token", "tokens": [TOKENS["splunk"]]},
        "elastic": {"auth": "bearer", "tokens": [TOKENS["elastic"]]},
        "falco": {"auth": "bearer", "tokens": ["old-" + TOKENS["falco"], TOKENS["falco"]]},
    }
    return make_settings(1, sources=sources, **overrides)


async def terminate(client: Client, incident_id: str) -> None:
    """Sample incidents have fixed ids: leave none running for the session's next test."""
    with contextlib.suppress(RPCError):
        await client.get_workflow_handle(incident_id).terminate("test cleanup")


async def post(
    http: httpx.AsyncClient,
    source: str,
    body: bytes,
    settings: Settings,
    *,
    content_type: str = "application/json",
    msg_id: str | None = None,
) -> httpx.Response:
    headers = signed(body, settings.webhook_secret.get_secret_value(), msg_id=msg_id)
    headers["content-type"] = content_type
    return await http.post(f"/v1/webhooks/{source}", content=body, headers=headers)


def fixture_body(vendor: str, name: str) -> bytes:
    return (FIXTURES / vendor / name).read_bytes()
