"""`GET /v1/policy` and the dry run `POST /v1/policy/evaluate` (no Temporal needed for either)."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from harness import reader_headers

from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.config import DEFAULT_POLICY_DIR, REPO_ROOT, Settings, new_webhook_secret
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.reload import reload_once
from orchestrator.temporal.client import connect

EXAMPLE = json.loads(
    (REPO_ROOT / "examples" / "findings" / "traffic-controller-compromise.json").read_text()
)
PROBLEM = "application/problem+json"


async def client_for(engine: EmbeddedEngine | None, tmp_path: Path) -> httpx.AsyncClient:
    settings = Settings(state_dir=tmp_path / "state", temporal_address="127.0.0.1:1")
    # Lazy: the policy routes never call Temporal, and nothing listens on port 1.
    temporal = await connect(settings, lazy=True)
    context = build_context(settings, temporal, engine, new_webhook_secret())
    transport = httpx.ASGITransport(app=create_app(context))
    return httpx.AsyncClient(
        transport=transport, base_url="http://bulkhead.test", headers=reader_headers(settings)
    )


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_POLICY_DIR, tmp_path / "policies"))


@pytest.fixture
async def http(policies: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(EmbeddedEngine(policies), tmp_path) as client:
        client.engine = client._transport.app.state.context.engine  # type: ignore[attr-defined]
        yield client


async def test_policy_status_names_version_source_and_no_rejection(http, policies):
    body = (await http.get("/v1/policy")).json()
    assert body["engine"] == "embedded"
    assert body["version"] == http.engine.version
    assert body["source"] == str(policies)
    assert body["loaded_at"]
    assert body["hot_reload"] is True
    assert body["last_rejection"] is None


async def test_a_rejected_reload_is_visible_with_its_reason(http, policies):
    path = policies / "bulkhead" / "containment" / "containment.rego"
    path.write_text(path.read_text() + "\nbroken := {\n")
    assert await reload_once(http.engine) == "rejected"
    body = (await http.get("/v1/policy")).json()
    assert body["version"] == http.engine.version
    assert body["last_rejection"]["reason"].startswith("compile: bulkhead/containment/")
    assert body["last_rejection"]["at"]


async def test_without_an_engine_policy_routes_answer_503(tmp_path):
    async with await client_for(None, tmp_path) as http:
        status = await http.get("/v1/policy")
        evaluate = await http.post("/v1/policy/evaluate", json=EXAMPLE)
    assert status.status_code == evaluate.status_code == 503
    assert status.headers["content-type"] == PROBLEM


async def test_dry_run_of_one_finding_returns_the_decision_and_its_input(http):
    response = await http.post("/v1/policy/evaluate", json=EXAMPLE)
    assert response.status_code == 200
    body = response.json()
    assert body["dry_run"] is True
    decision = body["decision"]
    assert decision["verdict"] == "contain"
    assert [s["id"] for s in decision["steps"]] == ["fallback:tsc-0001"]
    assert decision["policy_version"] == http.engine.version
    assert body["input"]["assets"][0]["id"] == "tsc-0001"


async def test_dry_run_of_an_incident_request_honours_pause_and_budget(http):
    paused = await http.post(
        "/v1/policy/evaluate", json={"findings": [EXAMPLE], "automation_paused": True}
    )
    spent = await http.post(
        "/v1/policy/evaluate", json={"findings": [EXAMPLE], "active_containments": 10}
    )
    for response in (paused, spent):
        (step,) = response.json()["decision"]["steps"]
        assert step["approval"]["required"] == 1


async def test_dry_run_of_a_full_policy_input(http):
    case = json.loads((DEFAULT_POLICY_DIR / "cases" / "substation-rtu-essential.json").read_text())
    response = await http.post("/v1/policy/evaluate", json=case["input"])
    (step,) = response.json()["decision"]["steps"]
    assert step["approval"]["must_include_roles"] == ["duty-officer"]


async def test_dry_run_with_explain_says_why_per_step(http):
    response = await http.post("/v1/policy/evaluate?explain=true", json=[EXAMPLE])
    explain = response.json()["explain"]
    assert explain["steps"]["fallback:tsc-0001"] == [
        "automatic: reversible, outside essential zones, within budget"
    ]
    assert "bulkhead/containment/steps.rego" in explain["lines_evaluated"]


async def test_dry_run_of_an_invalid_finding_is_422_with_pointers(http):
    bad = {**EXAMPLE, "severity_id": "very", "time": -1}
    response = await http.post("/v1/policy/evaluate", json={"findings": [bad]})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"/findings/0/severity_id", "/findings/0/time"}


async def test_dry_run_of_an_invalid_full_input_is_422(http):
    response = await http.post(
        "/v1/policy/evaluate",
        json={"incident_id": "x", "findings": [], "automation": {"paused": "maybe"}},
    )
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert "/automation/paused" in pointers


async def test_dry_run_of_malformed_json_is_400(http):
    response = await http.post(
        "/v1/policy/evaluate", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-json")


async def test_dry_run_of_no_findings_is_422(http):
    response = await http.post("/v1/policy/evaluate", json={"findings": []})
    assert response.status_code == 422
    assert response.json()["detail"] == "no findings to evaluate"


async def test_dry_run_uses_the_inventory_of_the_version_being_served(http, policies):
    new_controller = {**EXAMPLE, "resources": [{"uid": "tsc-0009"}], "evidences": []}
    before = await http.post("/v1/policy/evaluate", json=new_controller)
    assert before.json()["decision"]["verdict"] == "escalate"  # not in the inventory yet
    path = policies / "data" / "inventory.json"
    data = json.loads(path.read_text())
    data["assets"]["tsc-0009"] = {"zone": "traffic", "type": "traffic_controller"}
    path.write_text(json.dumps(data))
    assert await reload_once(http.engine) == "loaded"
    after = await http.post("/v1/policy/evaluate", json=new_controller)
    assert [s["id"] for s in after.json()["decision"]["steps"]] == ["fallback:tsc-0009"]


async def test_dry_run_takes_a_real_ocsf_finding_as_the_generic_webhook_does(http):
    """A producer's OCSF 1.6 Detection Finding (extra attributes and all) is evaluated."""
    finding = json.loads((REPO_ROOT / "tests/fixtures/ocsf/crowdstrike.json").read_text())
    response = await http.post("/v1/policy/evaluate", json=finding)
    assert response.status_code == 200, response.text
    assert response.json()["input"]["assets"], "the finding's host was not resolved"
    broken = {k: v for k, v in finding.items() if k != "class_uid"}
    refused = await http.post("/v1/policy/evaluate", json=broken)
    assert refused.status_code == 422
    assert "/class_uid" in [e["pointer"] for e in refused.json()["errors"]]
