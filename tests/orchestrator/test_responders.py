"""The responder service's domain errors, and the answer each one gets at the HTTP edge.

No Temporal here: the incident client and the policy engine are stand-ins, so each
failure the service can meet is forced directly. The end-to-end paths (real workflow,
real Rego) are in test_api_actions.py and tests/console/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from grant_signing import TEST_APPROVAL_KEY

from contracts.city import AutomationChange, CityView
from contracts.incident import (
    ApproveRequest,
    GrantCheck,
    IncidentStatus,
    IncidentView,
    Principal,
    StepState,
    StepView,
)
from orchestrator.api.problems import responder_problem
from orchestrator.policy.base import Authorization
from orchestrator.policy.models import AuthorizationInput
from orchestrator.responders import errors, grants
from orchestrator.responders.service import Responders
from orchestrator.temporal import errors as temporal

KEY = TEST_APPROVAL_KEY.get_secret_value().encode()
ALICE = Principal(name="alice", roles=["responder"])
STEP = StepView(
    id="fallback:tsc-0001",
    adapter="modbus",
    action="set",
    target={"asset": "tsc-0001"},
    state=StepState.AWAITING_APPROVAL,
)
VIEW = IncidentView(
    incident_id="inc-unit@2",
    status=IncidentStatus.AWAITING_APPROVAL,
    entity="inc-unit",
    findings=[],
    steps=[STEP],
)


@dataclass
class Engine:
    allow: bool = True
    reasons: list[str] = field(default_factory=list)
    asked: list[dict[str, Any]] = field(default_factory=list)

    def authorize(self, request: AuthorizationInput) -> Authorization:
        self.asked.append(request.document())  # the JSON the approval policy would see
        return Authorization(self.allow, "dec-1", "v1", self.reasons)


@dataclass
class Incidents:
    """The incident client, answering or failing as a test says."""

    read: Exception | None = None
    update: Exception | None = None
    sent: list[tuple[str, Any]] = field(default_factory=list)

    async def state(self, incident_id: str) -> IncidentView:
        if self.read is not None:
            raise self.read
        return VIEW

    async def approve(self, incident_id: str, request: ApproveRequest) -> StepView:
        self.sent.append((incident_id, request))
        if self.update is not None:
            raise self.update
        return STEP


@dataclass
class City:
    failure: Exception | None = None

    async def view(self) -> CityView:
        if self.failure is not None:
            raise self.failure
        return CityView()

    async def set_paused(self, change: AutomationChange, *, paused: bool) -> CityView:
        if self.failure is not None:
            raise self.failure
        return CityView(paused=paused, changed_by=change.principal.name)


@dataclass
class Deployment:
    engine: Engine | None = field(default_factory=Engine)
    city: City = field(default_factory=City)
    client: Any = None
    approval_key: bytes = KEY


def service(incidents: Incidents | None = None, **deployment: Any) -> Responders:
    return Responders(Deployment(**deployment), incidents or Incidents())  # type: ignore[arg-type]


def answer(error: errors.ResponderError) -> tuple[int, str, str]:
    problem = responder_problem(error)
    return problem.status, problem.slug, problem.detail


async def test_an_allowed_approval_is_sent_signed_for_the_incident_read():
    incidents = Incidents()
    engine = Engine()
    step = await service(incidents, engine=engine).approve(
        ALICE, "inc-unit@2", STEP.id, reason="seen it"
    )
    assert step == STEP
    [(key, request)] = incidents.sent
    assert key == "inc-unit@2" and request.incident_id == "inc-unit@2"
    assert request.authz_decision_id == "dec-1"
    check = GrantCheck(
        grant=request.grant,
        incident_id="inc-unit@2",
        step_id=STEP.id,
        action="approve",
        principal_id=ALICE.id,
    )
    assert grants.refusal(KEY, check) is None
    [asked] = engine.asked
    assert asked["action"] == "approve" and asked["step"]["id"] == STEP.id


async def test_no_policy_is_503_and_nothing_is_sent():
    incidents = Incidents()
    with pytest.raises(errors.NoPolicy) as caught:
        await service(incidents, engine=None).approve(ALICE, "inc-unit", STEP.id, reason="r")
    problem = responder_problem(caught.value)
    assert (problem.status, problem.slug, problem.headers) == (
        503,
        "no-policy",
        {"Retry-After": "5"},
    )
    assert incidents.sent == []


async def test_a_refusal_by_the_policy_is_403_with_its_reasons_and_decision():
    engine = Engine(allow=False, reasons=["viewer is read-only", "not on duty"])
    with pytest.raises(errors.Forbidden) as caught:
        await service(engine=engine).approve(ALICE, "inc-unit", STEP.id, reason="r")
    assert caught.value.reasons == ["viewer is read-only", "not on duty"]
    assert answer(caught.value) == (
        403,
        "forbidden",
        "alice may not approve: viewer is read-only; not on duty",
    )
    assert responder_problem(caught.value).extra == {"decision_id": "dec-1"}


async def test_a_policy_no_without_reasons_still_says_why():
    with pytest.raises(errors.Forbidden) as caught:
        await service(engine=Engine(allow=False)).set_automation(ALICE, "pause", reason="r")
    assert caught.value.message == "alice may not pause: the approval policy does not allow it"


async def test_an_unknown_step_is_404_before_the_policy_is_asked():
    engine = Engine()
    with pytest.raises(errors.UnknownStep) as caught:
        await service(engine=engine).approve(ALICE, "inc-unit", "nope", reason="r")
    assert answer(caught.value) == (404, "unknown-step", "incident inc-unit@2 has no step 'nope'")
    assert engine.asked == []


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (temporal.NotFound("gone"), (404, "unknown-incident", "no incident 'inc-x'")),
        (
            temporal.Unavailable("deadline exceeded"),
            (
                503,
                "temporal-unavailable",
                "incident 'inc-x' cannot be read now: deadline exceeded",
            ),
        ),
    ],
)
async def test_a_read_that_fails(failure: Exception, expected: tuple[int, str, str]):
    with pytest.raises(errors.ResponderError) as caught:
        await service(Incidents(read=failure)).incident("inc-x")
    assert answer(caught.value) == expected


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (temporal.Refused("step is not waiting"), (409, "conflict", "step is not waiting")),
        (
            temporal.NotFound("workflow execution already completed"),
            (409, "conflict", "incident inc-x is closed; nothing to approve"),
        ),
        (
            temporal.UpdateFailed("boom"),
            (500, "internal-server-error", "the incident could not apply approve: boom"),
        ),
        (
            temporal.Unavailable("connection refused"),
            (503, "temporal-unavailable", "Temporal did not take the approve: connection refused"),
        ),
    ],
)
async def test_an_update_the_incident_did_not_take(
    failure: Exception, expected: tuple[int, str, str]
):
    incidents = Incidents(update=failure)
    with pytest.raises(errors.ResponderError) as caught:
        await service(incidents).approve(ALICE, "inc-x", STEP.id, reason="r")
    assert answer(caught.value) == expected


async def test_the_city_record_unavailable_is_503():
    down = service(city=City(temporal.Unavailable("no route")))
    with pytest.raises(errors.Unavailable) as reading:
        await down.automation()
    with pytest.raises(errors.Unavailable) as changing:
        await down.set_automation(ALICE, "resume", reason="r")
    assert reading.value.message == "the city record cannot be read: no route"
    assert changing.value.message == "Temporal did not take the resume: no route"
    paused = await service().set_automation(ALICE, "pause", reason="drill")
    assert paused.paused and paused.changed_by == "alice"
