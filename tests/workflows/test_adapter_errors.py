"""Transient adapter errors retry with backoff; permanent ones fail the step at once.

The adapter is a fake because the point is to control exactly when it fails; the
retry behaviour under test is Temporal's, on the real dev server.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from harness import make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import FakeModbusAdapter, ScriptedEngine, fallback_step, new_incident, send

from adapters.base import PermanentAdapterError, TransientAdapterError
from contracts.adapter import Plan, Receipt, StepCommand, Verification
from contracts.incident import IncidentStatus, IncidentView, StepState
from orchestrator import activities as activities_module
from orchestrator.activities import ContainmentActivities
from orchestrator.wiring.inventory import Inventory


class FailingAdapter(FakeModbusAdapter):
    """Raises the given errors from apply, one per attempt, then applies."""

    def __init__(self, failures: list[Exception]) -> None:
        super().__init__()
        self.failures = failures
        self.applies = 0

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        self.applies += 1
        if self.failures:
            raise self.failures.pop(0)
        return await super().apply(command, key=key)


def activities_with(adapter: FakeModbusAdapter, settings) -> ContainmentActivities:
    engine = ScriptedEngine([fallback_step("tsc-0001")])
    return ContainmentActivities(engine, Inventory.load(settings.policy_dir), {"modbus": adapter})


async def run_until(
    client: Client, adapter: FakeModbusAdapter, status: IncidentStatus
) -> IncidentView:
    """One incident whose one step goes through `adapter`, until it reaches `status`."""
    settings = make_settings(1)
    params = new_incident()
    async with running_worker(client, settings, activities_with(adapter, settings)):
        await send(client, settings, params)
        return await wait_for(client, params.incident_id, lambda v: v.status is status)


async def test_transient_errors_are_retried_until_the_step_lands(temporal_client: Client):
    adapter = FailingAdapter([TransientAdapterError("timeout"), TransientAdapterError("reset")])
    view = await run_until(temporal_client, adapter, IncidentStatus.CONTAINED)
    assert adapter.applies == 3
    assert view.steps[0].state is StepState.VERIFIED


async def test_permanent_error_fails_the_step_without_retrying(temporal_client: Client):
    adapter = FailingAdapter([PermanentAdapterError("mode 'disco' is not allowed")])
    view = await run_until(temporal_client, adapter, IncidentStatus.FAILED)
    assert adapter.applies == 1
    assert view.escalated
    assert view.steps[0].error is not None
    assert "PermanentAdapterError" in view.steps[0].error
    assert "disco" in view.steps[0].error
    # The apply may have landed: the step and the audit keep what it would restore.
    assert view.steps[0].rollback_intent == {"value": 0}
    kinds = [e.kind for e in view.audit]
    assert kinds.index("step.intent") < kinds.index("step.applying") < kinds.index("step.failed")


class PlanRefused(FakeModbusAdapter):
    async def plan(self, command: StepCommand) -> Plan:
        raise PermanentAdapterError("no such unit")


async def test_a_plan_refused_fails_the_step_at_once_with_nothing_applied(
    temporal_client: Client,
):
    view = await run_until(temporal_client, PlanRefused(), IncidentStatus.FAILED)
    history = await temporal_client.get_workflow_handle(view.incident_id).fetch_history()
    step = view.steps[0]
    assert "no such unit" in (step.error or "")
    assert step.rollback_intent is None and step.receipt is None
    assert "step.intent" not in {e.kind for e in view.audit}
    # Nothing to wait for: no plan was signalled (workflows/changing.py, _applying_failed).
    assert not [e for e in history.events if e.HasField("timer_started_event_attributes")]


class LandsThenTimesOut(FakeModbusAdapter):
    """A controller whose first write lands but whose answer is lost (a timeout): the
    retry finds the target already changed. Plans read what the controller holds."""

    def __init__(self) -> None:
        super().__init__()
        self.value = 0
        self.plans = 0
        self.applies = 0

    async def plan(self, command: StepCommand) -> Plan:
        self.plans += 1
        return Plan(adapter=self.name, summary="set", before={"value": self.value}, after={})

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        self.applies += 1
        self.value = 1
        if self.applies == 1:
            raise TransientAdapterError("no answer from the controller")
        return await super().apply(command, key=key)


async def test_a_retried_apply_restores_what_the_target_held_before_the_first_attempt(
    temporal_client: Client,
):
    """Plan, apply and verify run in one local activity (workflows/changing.py): its
    retry must apply against the plan its first attempt recorded, not plan again against
    the target the first attempt changed."""
    adapter = LandsThenTimesOut()
    view = await run_until(temporal_client, adapter, IncidentStatus.CONTAINED)
    assert adapter.applies == 2
    assert adapter.plans == 1, "the retry planned again against the changed target"
    assert view.steps[0].rollback_intent == {"value": 0}


class VerifyRaisesOnce(FakeModbusAdapter):
    def __init__(self, *, hangs: bool = False) -> None:
        super().__init__()
        self.hangs = hangs  # the first verify never answers, instead of raising
        self.applies = 0
        self.verifies = 0

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        self.applies += 1
        return await super().apply(command, key=key)

    async def verify(self, receipt: Receipt) -> Verification:
        self.verifies += 1
        if self.verifies == 1 and self.hangs:
            await asyncio.sleep(60)
        if self.verifies == 1:
            raise TransientAdapterError("read timed out")
        return await super().verify(receipt)


async def test_a_verify_that_raises_after_apply_keeps_the_receipt_and_verifies_again(
    temporal_client: Client,
):
    """The change landed: the workflow records its receipt and verifies on its own,
    without applying a second time."""
    adapter = VerifyRaisesOnce()
    view = await run_until(temporal_client, adapter, IncidentStatus.CONTAINED)
    assert (adapter.applies, adapter.verifies) == (1, 2)
    step = view.steps[0]
    assert step.state is StepState.VERIFIED
    assert step.receipt is not None and step.receipt.applied


async def test_a_verify_that_hangs_after_apply_keeps_the_receipt_and_verifies_again(
    temporal_client: Client, monkeypatch: pytest.MonkeyPatch
):
    """The one call bounds its verify, so a verify that never answers cannot take the
    call's whole time and, with it, the receipt of a change that landed."""
    monkeypatch.setattr(activities_module, "VERIFY_TIMEOUT", timedelta(seconds=0.5))
    adapter = VerifyRaisesOnce(hangs=True)
    view = await run_until(temporal_client, adapter, IncidentStatus.CONTAINED)
    assert (adapter.applies, adapter.verifies) == (1, 2)
    assert view.steps[0].receipt is not None
