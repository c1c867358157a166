"""The typed incident client turns Temporal's errors into the domain errors callers catch.

Stand-in handles force each Temporal failure; the real dev server answers the cases it
can produce cheaply (an unknown incident, an update to nothing running). A webhook whose
findings Temporal does not take is still a 503 the sender may retry.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import api_client, example_finding, fresh_ip, make_settings, signed
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from contracts.incident import Principal, ReleaseRequest
from contracts.names import ErrorType
from orchestrator.temporal import errors
from orchestrator.temporal.incidents import IncidentClient

RELEASE = ReleaseRequest(principal=Principal(name="dora", roles=["duty-officer"]), reason="r")


def rpc(status: RPCStatusCode, message: str = "said Temporal") -> RPCError:
    return RPCError(message, status, b"")


class Handle:
    def __init__(self, failure: BaseException) -> None:
        self.failure = failure

    async def query(self, *_: Any, **__: Any) -> Any:
        raise self.failure

    async def execute_update(self, *_: Any, **__: Any) -> Any:
        raise self.failure

    async def signal(self, *_: Any, **__: Any) -> None:
        raise self.failure


class Pages:
    def __init__(self, failure: BaseException) -> None:
        self.failure = failure

    async def fetch_next_page(self) -> None:
        raise self.failure


class Failing:
    """A Temporal client every call of which fails the same way."""

    def __init__(self, failure: BaseException) -> None:
        self.failure = failure

    def get_workflow_handle(self, *_: Any, **__: Any) -> Handle:
        return Handle(self.failure)

    def list_workflows(self, *_: Any, **__: Any) -> Pages:
        return Pages(self.failure)


def failing(failure: BaseException) -> IncidentClient:
    return IncidentClient(Failing(failure))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (rpc(RPCStatusCode.NOT_FOUND), errors.NotFound),
        (rpc(RPCStatusCode.INVALID_ARGUMENT), errors.NotFound),
        (rpc(RPCStatusCode.UNAVAILABLE), errors.Unavailable),
        (rpc(RPCStatusCode.DEADLINE_EXCEEDED), errors.Unavailable),
    ],
)
async def test_a_query_that_fails(failure: RPCError, expected: type[Exception]):
    with pytest.raises(expected) as caught:
        await failing(failure).state("inc-x")
    assert str(caught.value) == "said Temporal"


@pytest.mark.parametrize(
    ("failure", "expected", "message"),
    [
        (
            WorkflowUpdateFailedError(ApplicationError("not waiting", type=ErrorType.REFUSED)),
            errors.Refused,
            "not waiting",
        ),
        (WorkflowUpdateFailedError(ApplicationError("boom")), errors.UpdateFailed, "boom"),
        (rpc(RPCStatusCode.NOT_FOUND), errors.NotFound, "said Temporal"),
        (rpc(RPCStatusCode.INVALID_ARGUMENT), errors.Unavailable, "said Temporal"),
        (rpc(RPCStatusCode.UNAVAILABLE), errors.Unavailable, "said Temporal"),
    ],
)
async def test_an_update_that_fails(failure: BaseException, expected: type[Exception], message):
    with pytest.raises(expected) as caught:
        await failing(failure).release("inc-x", RELEASE)
    assert str(caught.value) == message


async def test_a_page_temporal_refuses_or_cannot_read():
    with pytest.raises(errors.InvalidArgument):
        await failing(rpc(RPCStatusCode.INVALID_ARGUMENT)).page("q", page_size=1)
    with pytest.raises(errors.Unavailable):
        await failing(rpc(RPCStatusCode.UNAVAILABLE)).page("q", page_size=1)


async def test_a_recheck_of_an_ended_incident_is_not_found():
    with pytest.raises(errors.NotFound):
        await failing(rpc(RPCStatusCode.NOT_FOUND)).recheck("inc-x", "restart")


async def test_unknown_incidents_and_updates_to_nothing_running(temporal_client: Client):
    incidents = IncidentClient(temporal_client)
    missing = f"inc-{fresh_ip()}-never"
    for name in (missing, f"{missing}@2", "@2"):
        with pytest.raises(errors.NotFound):
            await incidents.state(name)
    with pytest.raises(errors.NotFound):
        await incidents.release(missing, RELEASE)


async def test_a_webhook_temporal_does_not_take_is_503_not_durable(
    temporal_client: Client, monkeypatch: pytest.MonkeyPatch
):
    async def down(*_: Any, **__: Any) -> None:
        raise errors.Unavailable("connection refused")

    monkeypatch.setattr(IncidentClient, "deliver_many", down)
    settings = make_settings(1)
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    body = json.dumps(example_finding(resources=[{"uid": fresh_ip()}])).encode()
    async with api_client(temporal_client, settings, None) as http:
        answer = await http.post("/v1/webhooks/generic", content=body, headers=signed(body, secret))
    assert answer.status_code == 503, answer.text
    assert answer.json()["type"].endswith("/not-durable")
    assert answer.headers["retry-after"] == "5"
