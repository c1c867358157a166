"""Schemathesis against the app's own /openapi.json: no 5xx, every response as documented.

Cases are generated from the live OpenAPI document (positive and negative data), sent
in-process to the real app backed by the Temporal dev server, and each response is
checked by schemathesis: not a server error, a documented status, content type, headers
and body schema. Webhook cases are sent twice: as generated (mostly 401) and signed with
the source's secret, so generated bodies reach the connectors too. Generation is
derandomized and bounded, so the run is repeatable and takes well under a minute.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from harness import make_settings, running_worker
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from workflow_fakes import ScriptedEngine

from orchestrator.activities import ContainmentActivities
from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.ingest.signatures import sign
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.responders.principals import PrincipalStore
from orchestrator.temporal.client import temporal_binary
from orchestrator.wiring.inventory import Inventory
from workflows.visibility import KEYS as VISIBILITY_KEYS

EXAMPLES_PER_OPERATION = 40
BASE_URL = "http://bulkhead.test"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
WEBHOOKS = "POST /v1/webhooks/{source}"


def generate(operation: Any, mode: GenerationMode) -> list[schemathesis.Case]:
    """A bounded, repeatable batch of cases (hypothesis only generates; we send later)."""
    cases: list[schemathesis.Case] = []

    @given(operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def collect(case: schemathesis.Case) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:  # nothing to negate: an operation without parameters or body
        assert mode is GenerationMode.NEGATIVE
    return cases


def documented_examples(operation: Any) -> list[schemathesis.Case]:
    """Each source's documented request body: signed, these must be 202s as documented."""
    body = operation.definition.raw["requestBody"]["content"]["application/json"]
    return [
        operation.Case(
            path_parameters={"source": source},
            body=example["value"],
            media_type="application/json",
        )
        for source, example in body["examples"].items()
    ]


def wire(case: schemathesis.Case) -> requests.PreparedRequest:
    """The exact request schemathesis would send (its serializers, our transport)."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    kwargs.pop("timeout", None)
    kwargs.pop("allow_redirects", None)
    return requests.Request(**kwargs).prepare()


def signed(prepared: requests.PreparedRequest, secret: str) -> requests.PreparedRequest:
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    try:
        body.decode()
    except UnicodeDecodeError:
        return prepared  # the signature scheme signs text; a non-UTF-8 body stays unsigned
    prepared.headers.update(
        sign(body, secret, msg_id=f"msg_{uuid.uuid4().hex}", timestamp=int(time.time()))
    )
    return prepared


async def send(
    http: httpx.AsyncClient, prepared: requests.PreparedRequest, caller: dict[str, str]
) -> httpx.Response:
    headers = dict(prepared.headers)
    if caller and "authorization" in {k.lower() for k in headers}:
        # Where schemathesis sends credentials, the authenticated run sends real ones, so
        # the request reaches validation; where it leaves them out (a negative case of
        # the security scheme), none are sent and a 401 is the right answer.
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        headers.update(caller)
    return await http.request(
        prepared.method or "GET",
        prepared.url or "/",
        headers=headers,
        content=prepared.body,
    )


async def ready(http: httpx.AsyncClient) -> None:
    """The worker's first poll reaches the server a moment after it starts."""
    for _ in range(100):
        if (await http.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the app never became ready")


@pytest.fixture
async def own_temporal() -> AsyncIterator[Client]:
    """A dev server of each run's own: GET /v1/incidents queries every running incident
    in the namespace, and incidents other tests (or the other run) left behind, which no
    worker polls any more, would each hold a query until its timeout."""
    env = await WorkflowEnvironment.start_local(
        search_attributes=VISIBILITY_KEYS,
        dev_server_existing_path=str(temporal_binary()),
        data_converter=pydantic_data_converter,
    )
    try:
        yield env.client
    finally:
        await env.shutdown()


@pytest.mark.parametrize("caller", ["anonymous", "responder"])
async def test_every_generated_request_gets_a_documented_non_5xx_answer(
    own_temporal: Client, tmp_path, caller: str
):
    """A healthy deployment (worker polling, city record kept) answers as documented.

    Run twice: anonymously (most routes stop at 401) and as a principal holding every
    acting role, so every generated body gets past authentication to validation and the
    handlers. The worker decides with a scripted engine that contains nothing: accepted
    fuzz findings must not drive adapters. The API's own engine is the real policy.
    """
    settings = make_settings(1, state_dir=tmp_path)
    headers = {}
    if caller != "anonymous":
        token = PrincipalStore(settings.principals_path).add(
            "fuzzer", ["responder", "duty-officer", "admin"]
        )
        headers = {"Authorization": f"Bearer {token}"}
    secret = settings.webhook_secret.get_secret_value()
    engine = EmbeddedEngine(settings.policy_dir)
    context = build_context(settings, own_temporal, engine, secret)
    inventory = Inventory.load(settings.policy_dir)
    activities = ContainmentActivities(ScriptedEngine([]), inventory, {})
    app = create_app(context)
    schema = schemathesis.openapi.from_dict(app.openapi())
    failures: list[str] = []
    statuses: dict[int, int] = {}
    past_auth: dict[str, int] = {}  # operation -> answers other than 401
    sent = 0
    transport = httpx.ASGITransport(app=app)
    async with (
        running_worker(own_temporal, settings, activities),
        httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http,
    ):
        await context.city.ensure()
        await ready(http)
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                checks = [*CHECKS, negative_data_rejection] if mode.is_negative else CHECKS
                cases = generate(operation, mode)
                if operation.label == WEBHOOKS and mode.is_positive:
                    cases += documented_examples(operation)
                for case in cases:
                    variants = [wire(case)]
                    if operation.label == WEBHOOKS:
                        variants.append(signed(wire(case), secret))
                    for prepared in variants:
                        response = await send(http, prepared, headers)
                        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                        if response.status_code != 401:
                            past_auth[operation.label] = past_auth.get(operation.label, 0) + 1
                        sent += 1
                        try:
                            case.validate_response(response, checks=checks)
                        except AssertionError as exc:  # schemathesis' FailureGroup
                            failures.append(f"{operation.label} [{mode}]: {exc}")
    assert sent > 300
    # The run reached past authentication into every kind of answer, not only 401s.
    assert {200, 202, 400, 401, 404, 422} <= set(statuses), statuses
    if headers:  # with a token, every operation's cases reach validation and handlers
        operations = {r.ok().label for r in schema.get_all_operations()}
        assert operations <= set(past_auth), operations - set(past_auth)
    assert not failures, "\n\n".join(failures[:5])


def test_every_route_is_documented_with_an_example(temporal_client):
    """An integrator reading /openapi.json sees a sample answer for every route, and a
    sample body for every route that takes one."""
    document = create_app(build_context(make_settings(1), temporal_client, None, "")).openapi()
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            text = json.dumps(operation)
            if '"example' not in text:
                missing.append(f"{method.upper()} {path}")
            body = operation.get("requestBody", {}).get("content", {})
            if body and not any("example" in m or "examples" in m for m in body.values()):
                missing.append(f"{method.upper()} {path} (request body)")
    assert missing == []
