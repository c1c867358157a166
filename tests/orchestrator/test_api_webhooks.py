"""POST /v1/webhooks/generic and GET /v1/incidents over the real app and dev server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import free_port
from harness import (
    api_client,
    example_finding,
    make_settings,
    running_worker,
    serving,
    signed,
    wait_for,
)
from temporalio.client import Client
from temporalio.service import RPCError
from workflow_fakes import ScriptedEngine

from contracts.incident import IncidentStatus
from orchestrator.activities import ContainmentActivities
from orchestrator.api import payload
from orchestrator.api.app import create_app
from orchestrator.api.context import ApiContext, build_context
from orchestrator.api.problems import Problem
from orchestrator.cli import send
from orchestrator.config import REPO_ROOT, Settings
from orchestrator.ingest.connectors import CONNECTORS
from orchestrator.ingest.connectors.base import Item
from orchestrator.ingest.entity import entity_of, incident_id_for
from orchestrator.temporal.client import connect
from orchestrator.wiring.inventory import Inventory
from orchestrator.wiring.worker import build_activities

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


# --- every vendor, through `bulkhead send` and a real server ----------------------------------

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "siem"
TOKENS = {source: f"{source}-token-{'x' * 24}" for source in ("splunk", "elastic", "falco")}
# What each sample must come out as: severity, rule (analytic uid or title), hosts/IPs, user.
SAMPLES = {
    "generic": (4, "ics-modbus-unauth-write", {"tsc-0001", "198.18.10.11"}, None),
    "splunk": (
        4,
        "Threat - Modbus Write From Municipal IT - Rule",
        {"198.18.10.12"},
        "svc-signals",
    ),
    "elastic": (5, "bulkhead-opcua-write-rtu", {"rtu-e01", "198.18.20.11"}, "svc-scada"),
    "sentinel": (4, "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", {"scada-e01"}, "svc-scada"),
    "wazuh": (4, "40112", {"tram-ops-01", "198.18.30.10", "198.18.40.77"}, "svc-signals"),
    "suricata": (4, "1:2026001:3", {"198.18.40.77", "198.18.10.11"}, None),
    "falco": (5, "Unexpected outbound connection destination", {"permits-web-01"}, "svc-permits"),
    "alertmanager": (5, "SignalControllerUnexpectedWrites", {"tsc-0003", "198.18.10.13"}, None),
}


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


def named_things(finding: dict[str, Any]) -> tuple[set[str], set[str]]:
    hosts = {r["uid"] for r in finding["resources"]}
    users: set[str] = set()
    for evidence in finding["evidences"]:
        for side in ("src_endpoint", "dst_endpoint"):
            endpoint = evidence.get(side) or {}
            hosts |= {v for v in (endpoint.get("ip"), endpoint.get("hostname")) if v}
        if evidence.get("user") and evidence["user"].get("name"):
            users.add(evidence["user"]["name"])
    return hosts, users


async def terminate(client: Client, incident_id: str) -> None:
    """Sample incidents have fixed ids: leave none running for the session's next test."""
    with contextlib.suppress(RPCError):
        await client.get_workflow_handle(incident_id).terminate("test cleanup")


async def test_every_vendor_sample_posts_through_bulkhead_send_to_an_incident(
    temporal_client: Client, capsys
):
    settings = mixed_auth_settings()
    context = build_context(
        settings, temporal_client, None, settings.webhook_secret.get_secret_value()
    )
    # The worker only has to hold the incidents: a policy that contains nothing.
    activities = ContainmentActivities(ScriptedEngine([]), Inventory.load(settings.policy_dir), {})
    started: list[str] = []
    try:
        async with (
            running_worker(temporal_client, settings, activities),
            serving(create_app(context)) as url,
        ):
            for source, (severity, rule, hosts, user) in SAMPLES.items():
                finding = CONNECTORS[source].normalize(json.loads(sample_path(source).read_text()))[
                    0
                ]
                incident_id = incident_id_for(entity_of(finding))
                await terminate(temporal_client, incident_id)
                started.append(incident_id)
                code = await asyncio.to_thread(
                    send.send, settings, source, sample_path(source), api_url=url
                )
                printed = capsys.readouterr().out
                assert code == 0, printed
                # stdout also holds the in-process server's log lines: find the printed JSON.
                shown, _ = json.JSONDecoder().raw_decode(printed[printed.index("{\n") :])
                answer = shown["findings"][0]
                assert answer["incident_id"] == incident_id
                view = await wait_for(
                    temporal_client,
                    incident_id,
                    lambda v, uid=answer["finding_uid"]: any(
                        f.finding_info.uid == uid for f in v.findings
                    ),
                )
                (got,) = [
                    f.model_dump(mode="json")
                    for f in view.findings
                    if f.finding_info.uid == answer["finding_uid"]
                ]
                analytic = got["finding_info"]["analytic"] or {}
                assert got["severity_id"] == severity, source
                assert rule in (
                    analytic.get("uid"),
                    analytic.get("name"),
                    got["finding_info"]["title"],
                )
                named_hosts, named_users = named_things(got)
                assert hosts <= named_hosts, (source, named_hosts)
                assert (user in named_users) if user else not named_users, (source, named_users)
    finally:
        for incident_id in started:
            await terminate(temporal_client, incident_id)


async def test_send_refuses_without_a_secret_and_says_why(tmp_path, capsys):
    settings = Settings(state_dir=tmp_path)
    assert send.send(settings, "generic", sample_path("generic")) == 2
    assert "no webhook secret" in capsys.readouterr().err


# --- per-item answers, limits ---------------------------------------------------------------


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


async def test_group_with_bad_alerts_accepts_the_good_one_and_names_the_rest(
    temporal_client: Client,
):
    settings = make_settings(1)
    body = fixture_body("alertmanager", "partial-bad-alert.json")
    async with api_client(temporal_client, settings, None) as http:
        response = await post(http, "alertmanager", body, settings)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert [f["pointer"] for f in answer["findings"]] == ["/alerts/0"]
    assert [r["pointer"] for r in answer["rejected"]] == ["/alerts/1", "/alerts/2"]
    assert {e["pointer"] for e in answer["rejected"][1]["errors"]} == {
        "/alerts/2/labels",
        "/alerts/2/startsAt",
        "/alerts/2/status",
    }
    await terminate(temporal_client, answer["findings"][0]["incident_id"])


async def test_payload_with_no_good_alert_is_422_naming_every_field(temporal_client: Client):
    settings = make_settings(1)
    body = fixture_body("wazuh", "invalid-missing-level.json")
    async with api_client(temporal_client, settings, None) as http:
        response = await post(http, "wazuh", body, settings)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert [e["pointer"] for e in response.json()["errors"]] == ["/rule/level"]


@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/json"])
async def test_ndjson_batch_is_answered_record_by_record(temporal_client: Client, content_type):
    """Forwarders label batches either way; both are read as NDJSON for Suricata."""
    settings = make_settings(1)
    body = fixture_body("suricata", "partial-batch-mixed.ndjson")
    async with api_client(temporal_client, settings, None) as http:
        response = await post(http, "suricata", body, settings, content_type=content_type)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert [f["pointer"] for f in answer["findings"]] == ["/0", "/3"]
    assert [i["pointer"] for i in answer["ignored"]] == ["/1", "/2"]
    assert [r["pointer"] for r in answer["rejected"]] == ["/4", "/5"]
    assert "not valid JSON" in answer["rejected"][0]["errors"][0]["detail"]
    assert answer["rejected"][1]["errors"][0]["pointer"] == "/5/alert/signature_id"
    for finding in answer["findings"]:
        await terminate(temporal_client, finding["incident_id"])


async def test_ndjson_to_a_source_that_takes_no_batches_is_415(temporal_client: Client):
    settings = make_settings(1)
    body = fixture_body("suricata", "partial-batch-mixed.ndjson")
    async with api_client(temporal_client, settings, None) as http:
        response = await post(http, "wazuh", body, settings, content_type="application/x-ndjson")
    assert response.status_code == 415
    assert response.json()["accepted"] == ["application/json"]


@pytest.mark.parametrize(
    ("body", "pointer", "needle"),
    [
        (b"[" * 40 + b"]" * 40, "", "nests deeper than 32 levels"),
        (b'{"alerts": [' + b",".join([b"1"] * 1001) + b"]}", "/alerts", "1001 items"),
        (b'{"context": {"rule": {"name": "\\ud800"}}}', "/context/rule/name", "surrogate"),
    ],
)
async def test_limits_are_422_with_the_pointer(temporal_client: Client, body, pointer, needle):
    settings = make_settings(1)
    async with api_client(temporal_client, settings, None) as http:
        response = await post(http, "elastic", body, settings)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["pointer"] == pointer
    assert needle in error["detail"]


async def test_very_deep_nesting_is_refused_before_parsing(temporal_client: Client):
    """500,000 levels would hit Python's recursion limit: a 500 if it were parsed."""
    settings = make_settings(1)
    body = b"[" * 500_000 + b"]" * 500_000
    async with api_client(temporal_client, settings, None) as http:
        response = await post(http, "generic", body, settings)
    assert response.status_code == 422
    assert "nests deeper" in response.json()["errors"][0]["detail"]


async def test_integer_past_the_digit_limit_is_400_not_500(temporal_client: Client):
    settings = make_settings(1)
    body = b'{"n": ' + b"9" * 5000 + b"}"
    async with api_client(temporal_client, settings, None) as http:
        response = await post(http, "generic", body, settings)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


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


# --- payload parsing (no server needed) -----------------------------------------------------

LIMITS = payload.Limits(max_depth=3, max_array_items=2)


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        (b'[[["x"]]]', False),
        (b"[[[[1]]]]", True),
        (b'["[[[[[[[[", "\\"[[[[[["]', False),  # brackets inside strings do not count
        (b'{"a": {"b": {"c": {}}}}', True),
        (b'"unterminated [[[[[[', False),
    ],
)
def test_nesting_is_measured_outside_strings(text, deep):
    assert payload.too_deep(text, 3) is deep


def test_ndjson_splits_on_newlines_only():
    """U+2028 is a line break to str.splitlines() but is legal inside a JSON string."""
    body = '{"a": "x\u2028y"}\n\n{"b": 1}\r\n'.encode()
    records = payload.parse_ndjson(body, LIMITS)
    assert [(r.prefix, r.value) for r in records if isinstance(r, payload.Document)] == [
        ("/0", {"a": "x\u2028y"}),
        ("/1", {"b": 1}),
    ]


def test_ndjson_line_over_a_limit_is_rejected_alone():
    body = b'{"a": [1, 2, 3]}\n{"b": 1}\n'
    first, second = payload.parse_ndjson(body, LIMITS)
    assert isinstance(first, Item)
    assert [e.pointer for e in first.errors] == ["/0/a"]
    assert isinstance(second, payload.Document)


def test_too_many_ndjson_records_is_a_422():
    with pytest.raises(Problem) as caught:
        payload.parse_ndjson(b"{}\n{}\n{}\n", LIMITS)
    assert caught.value.status == 422
