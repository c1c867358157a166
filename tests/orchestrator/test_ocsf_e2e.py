"""Documented OCSF findings posted over HTTP to the real app become incidents.

Each fixture of tests/fixtures/ocsf goes, as its producer would send it, signed with
Standard Webhooks, to `POST /v1/webhooks/generic` on the app served by uvicorn; a real
Temporal dev server and worker hold the incidents, and the incident is read back over
HTTP with a viewer's bearer token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
from harness import make_settings, running_worker, serving, signed
from temporalio.client import Client
from temporalio.service import RPCError
from workflow_fakes import ScriptedEngine

from orchestrator.activities import ContainmentActivities
from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.config import REPO_ROOT
from orchestrator.ingest.connectors import CONNECTORS
from orchestrator.ingest.entity import entity_of, incident_id_for
from orchestrator.responders.principals import PrincipalStore
from orchestrator.wiring.inventory import Inventory

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "ocsf"
# Entity and severity of every finding each fixture carries, in order.
EXPECTED: dict[str, list[tuple[str, int]]] = {
    "aws-security-hub.json": [("AWS::IAM::AccessKey:ASIATMJPC7EXAMPLE", 2)],
    "aws-security-lake-v1.json": [
        ("arn:aws:ec2:us-east-1:522536594833:security-group/sg-0daf160f08dfed499", 1)
    ],
    "crowdstrike.json": [("eng-ws-03", 4)],
    "okta.json": [("/app/office365/1111111111/sso/wsfed/active", 0)],
    "prowler.json": [
        (
            "arn:aws:acm:eu-west-1:111122223333:certificate/e4dc1386-8b4b-402c-9fed-03269ee10006",
            4,
        )
    ],
    "securityscorecard.json": [
        ("198.18.40.21", 1),
        ("198.18.41.11", 1),
        ("198.18.41.12", 1),
        ("198.18.41.13", 1),
    ],
}


async def terminate(client: Client, incident_id: str) -> None:
    """Fixture incidents have fixed ids: leave none running for another test."""
    with contextlib.suppress(RPCError):
        await client.get_workflow_handle(incident_id).terminate("test cleanup")


async def incident_with(
    http: httpx.AsyncClient, incident_id: str, finding_uid: str, token: str
) -> dict[str, Any]:
    """GET the incident until it holds the finding (the workflow takes the signal async)."""
    deadline = time.monotonic() + 20
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await http.get(
            f"/v1/incidents/{incident_id}", headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code == 200:
            shown = response.json()
            if any(f["finding_info"]["uid"] == finding_uid for f in shown["findings"]):
                return shown
        await asyncio.sleep(0.1)
    raise AssertionError(f"{incident_id} never showed {finding_uid}: {shown}")


async def test_every_documented_ocsf_finding_becomes_an_incident_over_http(
    temporal_client: Client,
):
    settings = make_settings(1)
    secret = settings.webhook_secret.get_secret_value()
    reader = PrincipalStore(settings.principals_path).add("reader", ["viewer"])
    context = build_context(settings, temporal_client, None, secret)
    # The worker only has to hold the incidents: a policy that contains nothing. It still
    # builds the real policy input, so what the policy would see is checked too.
    engine = ScriptedEngine([])
    activities = ContainmentActivities(engine, Inventory.load(settings.policy_dir), {})
    started = [incident_id_for(e) for expected in EXPECTED.values() for e, _ in expected]
    for incident_id in started:
        await terminate(temporal_client, incident_id)
    try:
        async with (
            running_worker(temporal_client, settings, activities),
            serving(create_app(context)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            for name, expected in EXPECTED.items():
                body = (FIXTURES / name).read_bytes()
                response = await http.post(
                    "/v1/webhooks/generic", content=body, headers=signed(body, secret)
                )
                assert response.status_code == 202, (name, response.text)
                answers = response.json()["findings"]
                assert [a["incident_id"] for a in answers] == [
                    incident_id_for(entity) for entity, _ in expected
                ], name
                posted = json.loads(body)
                documents = posted if isinstance(posted, list) else [posted]
                for answer, (entity, severity), document in zip(
                    answers, expected, documents, strict=True
                ):
                    shown = await incident_with(
                        http, answer["incident_id"], answer["finding_uid"], reader
                    )
                    assert shown["entity"] == entity, name
                    (finding,) = [
                        f
                        for f in shown["findings"]
                        if f["finding_info"]["uid"] == answer["finding_uid"]
                    ]
                    assert finding["severity_id"] == severity, name
                    # The payload itself is kept outside Temporal and served by digest.
                    assert finding["raw_data"] is None, name
                    raw = await http.get(
                        f"/v1/raw/{finding['raw_ref']['sha256']}",
                        headers={"Authorization": f"Bearer {reader}"},
                    )
                    assert raw.status_code == 200, (name, raw.text)
                    assert json.loads(raw.content) == document, name

            refused_body = (FIXTURES / "invalid-ibm-qradar.json").read_bytes()
            refused = await http.post(
                "/v1/webhooks/generic", content=refused_body, headers=signed(refused_body, secret)
            )
            # The policy saw the city's workstation behind CrowdStrike's host name.
            for _ in range(100):
                if ["eng-ws-03"] in [[a["id"] for a in i["assets"]] for i in engine.inputs]:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"no decision about eng-ws-03: {engine.inputs}")
    finally:
        for incident_id in started:
            await terminate(temporal_client, incident_id)

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    pointers = {e["pointer"] for e in refused.json()["errors"]}
    assert pointers == {"/type_uid", "/severity_id", "/metadata/version"}


def test_expected_incidents_match_what_the_connector_computes():
    """The table above is the connector's own answer, so a drift fails here first."""
    for name, expected in EXPECTED.items():
        findings = CONNECTORS["generic"].normalize(json.loads((FIXTURES / name).read_text()))
        assert [(entity_of(f), int(f.severity_id)) for f in findings] == expected, name
