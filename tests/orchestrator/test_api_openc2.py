"""POST /v1/openc2 at the door and through the policy, on the real app, the real Temporal
dev server, a real worker and the shipped policy (no lab: no step here reaches a target).

Commands are written from the specifications (LS v1.0 Annex A, SLPF Annex A, ER Annex E,
HTTPS transfer v1.0 Annex B / v1.1 Annex E), as a producer would send them.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import httpx
import pytest
from harness import api_client, make_settings, running_worker
from temporalio.client import Client
from temporalio.service import RPCError

from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.responders.principals import PrincipalStore
from orchestrator.standards.openc2_consumer import rule_number

V11 = "application/openc2+json;version=1.0"
V10_CMD = "application/openc2-cmd+json;version=1.0"
V10_RSP = "application/openc2-rsp+json;version=1.0"
PROBLEM = "application/problem+json"


def token(settings: Any, name: str, *roles: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {PrincipalStore(settings.principals_path).add(name, list(roles))}"
    }


def post(
    http: httpx.AsyncClient, command: Any, caller: dict[str, str], media: str = V11, **headers: str
) -> Any:
    body = command if isinstance(command, bytes) else json.dumps(command).encode()
    return http.post(
        "/v1/openc2", content=body, headers={**caller, "content-type": media, **headers}
    )


@pytest.fixture
def settings() -> Any:
    return make_settings(1)


@pytest.fixture
async def http(temporal_client: Client, settings: Any) -> Any:
    engine = EmbeddedEngine(settings.policy_dir)
    async with api_client(temporal_client, settings, None, engine, anonymous=True) as client:
        yield client


QUERY_ALL = {
    "action": "query",
    "target": {"features": ["versions", "profiles", "pairs", "rate_limit"]},
}


async def test_query_features_lists_slpf_and_er_with_their_pairs(http, settings):
    answer = await post(http, QUERY_ALL, token(settings, "soar", "openc2-producer"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == V11
    assert answer.headers["cache-control"] == "no-cache"
    body = answer.json()
    assert body["status"] == 200
    results = body["results"]
    assert results["versions"] == ["1.0"]
    assert results["profiles"] == ["slpf", "er"]
    assert results["pairs"] == {
        "query": ["features"],
        "deny": ["ipv4_net", "ipv4_connection"],
        "delete": ["slpf:rule_number"],
        "contain": ["device"],
        "allow": ["device"],
        "set": ["er:account"],
    }
    assert results["rate_limit"] == settings.openc2_rate_limit


async def test_query_features_without_features_is_a_bare_ok(http, settings):
    """LS §4.2.1: no features asked, a simple OK."""
    answer = await post(
        http,
        {"action": "query", "target": {"features": []}},
        token(settings, "p", "openc2-producer"),
    )
    assert (answer.status_code, answer.json()) == (200, {"status": 200, "status_text": "features"})


async def test_the_older_media_type_is_answered_in_its_response_type_with_the_request_id(
    http, settings
):
    answer = await post(
        http,
        QUERY_ALL,
        token(settings, "old", "openc2-producer"),
        V10_CMD,
        **{"X-Request-ID": "d1ac0489"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == V10_RSP
    assert answer.headers["x-request-id"] == "d1ac0489"


async def test_a_v11_message_envelope_is_answered_in_one_with_its_request_id(http, settings):
    """HTTPS v1.1 §3.3.2 and Annex E.1: the command inside headers/body.openc2.request."""
    message = {
        "headers": {
            "request_id": "d1ac0489-ed51-4345-9175-f3078f30afe5",
            "created": 1545257700000,
            "from": "oc2producer.company.net",
            "to": ["oc2consumer.company.net"],
        },
        "body": {"openc2": {"request": {"action": "query", "target": {"features": ["versions"]}}}},
    }
    answer = await post(http, message, token(settings, "v11", "openc2-producer"))
    body = answer.json()
    assert answer.status_code == 200
    assert body["headers"]["request_id"] == "d1ac0489-ed51-4345-9175-f3078f30afe5"
    assert body["headers"]["to"] == ["oc2producer.company.net"]
    assert body["body"]["openc2"]["response"] == {
        "status": 200,
        "status_text": "features",
        "results": {"versions": ["1.0"]},
    }


async def test_an_anonymous_command_is_401_as_an_openc2_response(http):
    answer = await post(http, QUERY_ALL, {})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == V11
    assert answer.json()["status"] == 401
    assert "Bearer" in answer.headers["www-authenticate"]


async def test_an_anonymous_call_of_another_media_type_is_a_401_problem(http):
    answer = await post(http, QUERY_ALL, {}, "application/json")
    assert (answer.status_code, answer.headers["content-type"]) == (401, PROBLEM)


@pytest.mark.parametrize(
    "media", ["application/json", "text/plain", "application/openc2+json;version=2.0", ""]
)
async def test_a_media_type_that_is_no_openc2_one_is_a_415_problem(http, settings, media):
    answer = await post(
        http, QUERY_ALL, token(settings, f"m{uuid.uuid4().hex[:6]}", "openc2-producer"), media
    )
    assert (answer.status_code, answer.headers["content-type"]) == (415, PROBLEM)


async def test_a_principal_without_the_producer_role_is_refused(http, settings):
    answer = await post(http, QUERY_ALL, token(settings, "rita", "responder", "duty-officer"))
    assert answer.status_code == 403
    assert answer.json()["status"] == 403
    assert "openc2-producer" in answer.json()["status_text"]


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ({"target": {"ipv4_net": "198.18.40.33"}}, "must have `action`"),
        ({"action": "deny"}, "must have `target`"),
        ({"action": "block", "target": {"ipv4_net": "198.18.40.33"}}, "not an LS action"),
        (
            {"action": "deny", "target": {"ipv4_net": "198.18.40.33", "ipv6_net": "::1"}},
            "exactly one",
        ),
        ({"action": "deny", "target": {"ipv4_net": "198.18.40.333"}}, "ipv4_net"),
        ({"action": "deny", "target": {"ipv4_net": "198.18.40.33/24"}}, "host bits"),
        ({"action": "deny", "target": {"ipv4_connection": {}}}, "at least one"),
        ({"action": "deny", "target": {"ipv4_connection": {"dst_port": 70000}}}, "at most 65535"),
        ({"action": "deny", "target": {"ipv4_net": "198.18.40.33"}, "args": {}}, "at least one"),
        (
            {
                "action": "deny",
                "target": {"ipv4_net": "198.18.40.33"},
                "args": {"start_time": 1, "stop_time": 2, "duration": 1},
            },
            "only two",
        ),
        (
            {"action": "deny", "target": {"ipv4_net": "198.18.40.33"}, "args": {"duration": -5}},
            "integer",
        ),
        ({"action": "deny", "target": {"ipv4_net": "198.18.40.33"}, "extra": 1}, "unknown"),
        (
            {
                "action": "deny",
                "target": {"ipv4_net": "198.18.40.33"},
                "command_id": "has spaces in it",
            },
            "command_id",
        ),
        (
            {
                "action": "deny",
                "target": {"ipv4_net": "198.18.40.33"},
                "args": {"slpf": {"direction": "up"}},
            },
            "direction",
        ),
        (
            {
                "action": "contain",
                "target": {"device": {"hostname": "eng-ws-03"}},
                "actuator": {"er": {}},
            },
            "Containment type argument not populated",
        ),
        (
            {
                "action": "set",
                "target": {"er": {"account": {"account_name": "svc-scada"}}},
                "args": {"er": {}},
            },
            "Account-status type argument not populated",
        ),
        (
            {"action": "delete", "target": {"slpf:rule_number": 5}, "args": {"duration": 5}},
            "no argument",
        ),
        ({"action": "query", "target": {"features": ["colour"]}}, "feature"),
        (b"{not json", "not valid JSON"),
        (b"[" * 100 + b"]" * 100, "deeper"),
    ],
)
async def test_a_malformed_command_is_400_saying_what_is_wrong(http, settings, command, says):
    answer = await post(
        http, command, token(settings, f"p{uuid.uuid4().hex[:6]}", "openc2-producer")
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == V11
    assert answer.json()["status"] == 400
    assert says in answer.json()["status_text"]


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (
            {
                "action": "update",
                "target": {"file": {"name": "ruleset.xml", "path": "/etc"}},
                "actuator": {"slpf": {}},
            },
            "Command not supported",
        ),
        ({"action": "allow", "target": {"ipv4_net": "198.18.40.33"}}, "Target type not supported"),
        ({"action": "deny", "target": {"ipv6_net": "2001:db8::1"}}, "IPv4"),
        ({"action": "deny", "target": {"domain_name": "evil.example"}}, "Command not supported"),
        (
            {"action": "deny", "target": {"ipv4_net": "198.18.40.33"}, "actuator": {"x-acme": {}}},
            "profile x-acme not supported",
        ),
        (
            {
                "action": "deny",
                "target": {"ipv4_net": "198.18.40.33"},
                "args": {"slpf": {"insert_rule": 7}},
            },
            "Option not supported: insert_rule",
        ),
        (
            {
                "action": "deny",
                "target": {"ipv4_net": "198.18.40.33"},
                "args": {"slpf": {"direction": "ingress"}},
            },
            "Option not supported: direction",
        ),
        ({"action": "deny", "target": {"ipv4_net": "203.0.113.9"}}, "no inventory zone"),
        ({"action": "deny", "target": {"ipv4_net": "198.18.0.0/16"}}, "spans the zones"),
        (
            {"action": "deny", "target": {"ipv4_connection": {"protocol": "tcp", "dst_port": 23}}},
            "city-wide",
        ),
        (
            {
                "action": "contain",
                "target": {"device": {"device_id": "eng-ws-03"}},
                "args": {"er": {"device_containment": "app_restriction"}},
            },
            "Option not supported",
        ),
        (
            {
                "action": "contain",
                "target": {"device": {"device_id": "eng-ws-03"}},
                "actuator": {"slpf": {}},
            },
            "Command not supported",
        ),
    ],
)
async def test_an_unsupported_pair_profile_or_option_is_501(http, settings, command, says):
    answer = await post(
        http, command, token(settings, f"p{uuid.uuid4().hex[:6]}", "openc2-producer")
    )
    assert answer.status_code == 501, answer.text
    assert answer.json()["status"] == 501
    assert says in answer.json()["status_text"]


async def test_a_device_or_account_the_inventory_does_not_know_is_500_cannot_access(http, settings):
    """ER §2.3.3.1 and §2.3.8.4: MUST respond 500, 'Cannot access device/account'."""
    caller = token(settings, "er", "openc2-producer")
    device = {
        "action": "contain",
        "target": {"device": {"hostname": "nowhere"}},
        "args": {"er": {"device_containment": "network_isolation"}},
    }
    account = {
        "action": "set",
        "target": {"er": {"account": {"account_name": "nobody"}}},
        "args": {"er": {"account_status": "disabled"}},
    }
    answers = [await post(http, device, caller), await post(http, account, caller)]
    assert [a.status_code for a in answers] == [500, 500]
    assert answers[0].json()["status_text"].startswith("Cannot access device")
    assert answers[1].json()["status_text"].startswith("Cannot access account")


async def test_the_rate_limit_answers_503_past_its_commands_a_minute(temporal_client, settings):
    limited = settings.model_copy(update={"openc2_rate_limit": 2})
    engine = EmbeddedEngine(settings.policy_dir)
    async with api_client(temporal_client, limited, None, engine, anonymous=True) as client:
        caller = token(limited, "busy", "openc2-producer")
        statuses = [(await post(client, QUERY_ALL, caller)).status_code for _ in range(3)]
    assert statuses == [200, 200, 503]


async def test_an_unknown_rule_number_is_404(http, settings):
    delete = {"action": "delete", "target": {"slpf:rule_number": 1}, "actuator": {"slpf": {}}}
    answer = await post(http, delete, token(settings, "d", "openc2-producer"))
    assert answer.status_code == 404, answer.text


# --- through the policy (a real worker; no step reaches a target) ---------------------------


async def ended(client: Client, *incident_ids: str) -> None:
    """Incidents keyed by fixed entities outlive a test's worker: end them first."""
    for incident_id in incident_ids:
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(incident_id).terminate("openc2 test")


async def test_a_command_that_would_cut_off_an_essential_zone_is_refused_by_policy(
    temporal_client, settings, http
):
    incident = "inc-198.18.20.0-24~"
    deny = {
        "action": "deny",
        "target": {"ipv4_net": "198.18.20.0/24"},
        "actuator": {"slpf": {}},
        "command_id": uuid.uuid4().hex,
    }
    async with running_worker(temporal_client, settings):
        answer = await post(http, deny, token(settings, "soar", "openc2-producer"))
    body = answer.json()
    assert answer.status_code == 403, answer.text
    assert "never on a command's say-so" in body["status_text"]
    assert body["results"]["x-bulkhead"]["incident_id"].startswith(incident)
    await ended(temporal_client, body["results"]["x-bulkhead"]["incident_id"])


async def test_a_command_on_an_essential_host_waits_for_two_approvals_and_answers_102(
    temporal_client, settings, http
):
    """scada-e01 is in the essential energy zone: the command's step is gated, and the
    answer is Processing (102, in an HTTP 200) with the incident and the rule number."""
    await ended(temporal_client, "inc-scada-e01")
    deny = {
        "action": "deny",
        "target": {"ipv4_net": "198.18.20.10"},
        "args": {"duration": 300000, "response_requested": "complete"},
        "actuator": {"slpf": {}},
        "command_id": uuid.uuid4().hex,
    }
    try:
        async with running_worker(temporal_client, settings):
            answer = await post(http, deny, token(settings, "soar", "openc2-producer"))
            shown = await http.get(
                "/v1/incidents/inc-scada-e01", headers=token(settings, "v", "viewer")
            )
    finally:
        await ended(temporal_client, "inc-scada-e01")
    body = answer.json()
    assert answer.status_code == 200, answer.text
    assert body["status"] == 102
    assert "2 approval(s), a duty-officer among them" in body["status_text"]
    assert body["results"]["x-bulkhead"] == {
        "incident_id": "inc-scada-e01",
        "steps": {"deny:198.18.20.10_32": "awaiting_approval"},
    }
    assert body["results"]["slpf"]["rule_number"] == rule_number(
        "inc-scada-e01", "deny:198.18.20.10_32"
    )
    step = shown.json()["steps"][0]
    assert (step["lease_s"], step["args"]) == (300, {"timeout_s": 300})
    assert shown.json()["findings"][0]["metadata"]["product"]["name"] == "Bulkhead OpenC2 consumer"
