"""Transient adapter errors retry with backoff; permanent ones fail the step at once.

The adapter is a fake because the point is to control exactly when it fails; the
retry behaviour under test is Temporal's, on the real dev server.
"""

from __future__ import annotations

from harness import make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import FakeModbusAdapter, ScriptedEngine, fallback_step, new_incident, send

from adapters.base import PermanentAdapterError, TransientAdapterError
from contracts.adapter import Receipt, StepCommand
from contracts.incident import IncidentStatus, StepState
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


def activities_with(adapter: FailingAdapter, settings) -> ContainmentActivities:
    engine = ScriptedEngine([fallback_step("tsc-0001")])
    return ContainmentActivities(engine, Inventory.load(settings.policy_dir), {"modbus": adapter})


async def test_transient_errors_are_retried_until_the_step_lands(temporal_client: Client):
    settings = make_settings(1)
    adapter = FailingAdapter([TransientAdapterError("timeout"), TransientAdapterError("reset")])
    params = new_incident()
    async with running_worker(temporal_client, settings, activities_with(adapter, settings)):
        await send(temporal_client, settings, params)
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
    assert adapter.applies == 3
    assert view.steps[0].state is StepState.VERIFIED


async def test_permanent_error_fails_the_step_without_retrying(temporal_client: Client):
    settings = make_settings(1)
    adapter = FailingAdapter([PermanentAdapterError("mode 'disco' is not allowed")])
    params = new_incident()
    async with running_worker(temporal_client, settings, activities_with(adapter, settings)):
        await send(temporal_client, settings, params)
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.FAILED
        )
    assert adapter.applies == 1
    assert view.escalated
    assert view.steps[0].error is not None
    assert "PermanentAdapterError" in view.steps[0].error
    assert "disco" in view.steps[0].error
