"""Per-item answers for batches and groups, the parser's limits, and NDJSON."""

from __future__ import annotations

import pytest
from harness import (
    api_client,
    make_settings,
)
from temporalio.client import Client
from webhook_helpers import PROBLEM, fixture_body, post, terminate

from orchestrator.api import payload
from orchestrator.api.problems import Problem
from orchestrator.ingest.connectors.base import Item

# --- per-item answers, limits ---------------------------------------------------------------


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
