"""The policy boundary: an engine is used only through `PolicyEngine`, with typed inputs.

`ProtocolOnly` is no engine Bulkhead ships, so any code path that asks which engine it
has (isinstance, getattr) fails on it: the decide activity, the dry-run API, `GET
/v1/policy` and hot-reload wiring must all get what they need from the protocol.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from contracts.decision import DecideRequest, Decision, Verdict
from contracts.findings import Finding
from orchestrator.activities import ContainmentActivities
from orchestrator.config import DEFAULT_POLICY_DIR, REPO_ROOT, Settings
from orchestrator.policy.base import Authorization, AuthorizationRequest, PolicyEngine
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.explain import Explanation
from orchestrator.policy.factory import policy_parts
from orchestrator.policy.models import AuthorizationInput, ContainmentInput
from orchestrator.policy.status import PolicyStatus
from orchestrator.wiring.inventory import Inventory

from .test_policy_api import client_for

EXAMPLE = json.loads(
    (REPO_ROOT / "examples" / "findings" / "traffic-controller-compromise.json").read_text()
)
CITY = json.loads((DEFAULT_POLICY_DIR / "data" / "inventory.json").read_text())


class ProtocolOnly:
    """A PolicyEngine and nothing else: observes everything, records what it was given."""

    version = "sha256:protocol-only"

    def __init__(self, inventory: Inventory | None = None, *, explains: bool = False) -> None:
        self._inventory = inventory
        self._explains = explains
        self.inputs: list[ContainmentInput] = []
        self.requests: list[AuthorizationInput] = []
        self.watched: list[float] = []

    @property
    def bundle(self) -> PolicyBundle | None:
        return None

    def inventory(self) -> Inventory | None:
        return self._inventory

    def status(self) -> PolicyStatus:
        return PolicyStatus(
            engine="protocol-only", version=self.version, source="-", loaded_at=None
        )

    def decide(self, policy_input: ContainmentInput) -> Decision:
        self.inputs.append(policy_input)
        return Decision(
            verdict=Verdict.OBSERVE,
            reasons=["protocol only"],
            policy_version=self.version,
            decision_id=f"d-{len(self.inputs)}",
        )

    def authorize(self, request: AuthorizationRequest) -> Authorization:
        self.requests.append(AuthorizationInput.model_validate(request))
        return Authorization(allow=True, decision_id="a-1", policy_version=self.version)

    def explain(self, policy_input: ContainmentInput) -> Explanation | None:
        return Explanation(notes={"-": [policy_input.incident_id]}) if self._explains else None

    def watcher(self, *, interval_s: float) -> Awaitable[None] | None:
        self.watched.append(interval_s)
        return None


def engine_of(fake: ProtocolOnly) -> PolicyEngine:
    return fake  # the annotation is the point: the fake satisfies the protocol


def request() -> DecideRequest:
    return DecideRequest(incident_id="inc-tsc-0001", findings=[Finding.model_validate(EXAMPLE)])


# --- the decide activity -------------------------------------------------------------------


async def test_the_decide_activity_enriches_with_the_engines_inventory():
    """The engine's inventory wins over the one the activities were built with (a hot
    reload moves it), and the engine is handed a typed input."""
    engine = ProtocolOnly(Inventory(CITY))
    activities = ContainmentActivities(engine_of(engine), Inventory({}), {})
    decision = await activities.decide(request())
    (policy_input,) = engine.inputs
    assert [a.id for a in policy_input.assets] == ["tsc-0001"]
    assert (decision.zones, decision.essential) == (["traffic"], False)


async def test_an_engine_without_an_inventory_is_enriched_with_the_activities_own():
    engine = ProtocolOnly(None)
    activities = ContainmentActivities(engine_of(engine), Inventory(CITY), {})
    await activities.decide(request())
    assert [a.id for a in engine.inputs[0].assets] == ["tsc-0001"]


async def test_an_inventory_record_the_input_refuses_escalates_without_asking_the_policy():
    city = json.loads(json.dumps(CITY))
    city["assets"]["tsc-0001"]["zone"] = 7  # a zone is a name
    engine = ProtocolOnly(Inventory(city))
    decision = await ContainmentActivities(engine_of(engine), Inventory({}), {}).decide(request())
    assert decision.verdict is Verdict.ESCALATE
    assert decision.policy_version == engine.version
    assert decision.reasons[0].startswith("policy input is invalid: assets.0.zone")
    assert engine.inputs == []


# --- the API -----------------------------------------------------------------------------------


async def test_policy_status_is_the_engines_own(tmp_path: Path):
    async with await client_for(engine_of(ProtocolOnly()), tmp_path) as http:
        body = (await http.get("/v1/policy")).json()
    assert body["engine"] == "protocol-only"
    assert body["version"] == ProtocolOnly.version


@pytest.mark.parametrize("explains", [True, False])
async def test_a_dry_run_on_an_engine_without_a_bundle_asks_it_to_explain(tmp_path, explains):
    engine = ProtocolOnly(Inventory(CITY), explains=explains)
    async with await client_for(engine_of(engine), tmp_path) as http:
        response = await http.post("/v1/policy/evaluate?explain=true", json=EXAMPLE)
    assert response.status_code == 200
    body = response.json()
    assert body["decision"]["policy_version"] == engine.version
    assert body["input"] == engine.inputs[0].document()
    assert body["input"]["assets"][0]["id"] == "tsc-0001"
    # An engine that cannot explain answers without it, as OPA always has.
    assert ("explain" in body) is explains


async def test_a_dry_run_with_a_count_below_zero_is_a_422_naming_the_field(tmp_path):
    engine = ProtocolOnly(Inventory(CITY))
    async with await client_for(engine_of(engine), tmp_path) as http:
        response = await http.post(
            "/v1/policy/evaluate", json={"findings": [EXAMPLE], "active_containments": -1}
        )
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/active_containments"]
    assert engine.inputs == []


async def test_a_dry_run_answers_with_a_full_input_as_it_was_written(tmp_path):
    case = json.loads((DEFAULT_POLICY_DIR / "cases" / "substation-rtu-essential.json").read_text())
    async with await client_for(EmbeddedEngine(DEFAULT_POLICY_DIR), tmp_path) as http:
        response = await http.post("/v1/policy/evaluate", json=case["input"])
    assert response.json()["input"] == case["input"]


# --- hot reload ----------------------------------------------------------------------------


def test_hot_reload_is_the_engines_to_offer():
    settings = Settings(policy_reload_interval_s=0.5)
    fake = ProtocolOnly()
    assert policy_parts(engine_of(fake), settings) == {}
    assert fake.watched == [0.5]
    parts: dict[str, Any] = policy_parts(EmbeddedEngine(DEFAULT_POLICY_DIR), settings)
    assert list(parts) == ["policy-reload"]
    parts["policy-reload"].close()  # made, never started: closed so it does not warn
    assert (
        EmbeddedEngine.from_bundle(PolicyBundle.read(DEFAULT_POLICY_DIR)).watcher(interval_s=1)
        is None
    ), "nothing to watch without a directory"


def test_hot_reload_turned_off_asks_no_engine_for_a_watcher():
    fake = ProtocolOnly()
    assert policy_parts(engine_of(fake), Settings(policy_reload_interval_s=0)) == {}
    assert fake.watched == []
