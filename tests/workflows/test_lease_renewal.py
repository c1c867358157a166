"""Extending a lease moves the target's own deadline too (adapters.base.RenewsLease).

The nftables adapter arms a dead-man's switch on the gateway (set elements that expire
with the lease); tests/adapters/test_nftables_lease.py proves with real TCP that a
renewed switch holds past its first deadline. Here: the workflow asks for the renewal
with the new deadline on every extend, and keeps the old lease when the target refuses.
"""

from __future__ import annotations

from datetime import datetime

from harness import make_settings, running_worker, wait_for
from temporalio.client import Client, WorkflowUpdateFailedError
from workflow_fakes import FakeModbusAdapter, ScriptedEngine, fallback_step, new_incident, send

from adapters.base import PermanentAdapterError
from contracts.adapter import Receipt
from contracts.incident import ExtendRequest, IncidentView, Principal, StepState, StepView
from contracts.names import STATE_QUERY
from orchestrator.activities import ContainmentActivities
from orchestrator.wiring.inventory import Inventory

DORA = Principal(name="dora", roles=["duty-officer"])


class SwitchedAdapter(FakeModbusAdapter):
    """A target with its own deadline: records every renewal, or refuses them all."""

    def __init__(self, *, refuses: bool = False) -> None:
        super().__init__()
        self.refuses = refuses
        self.renewals: list[datetime] = []

    async def renew_lease(self, receipt: Receipt, *, expires_at: datetime) -> Receipt:
        if self.refuses:
            raise PermanentAdapterError("the step is no longer in place on the gateway")
        self.renewals.append(expires_at)
        return receipt.model_copy(
            update={"after": {**receipt.after, "expires_at": str(expires_at)}}
        )


def verified(view: IncidentView) -> bool:
    return bool(view.steps) and view.steps[0].state is StepState.VERIFIED


def contained(adapter: SwitchedAdapter):
    settings = make_settings(1)
    engine = ScriptedEngine([fallback_step("tsc-0001")])
    activities = ContainmentActivities(
        engine, Inventory.load(settings.policy_dir), {"modbus": adapter}
    )
    params = new_incident()
    return settings, activities, params


async def test_extend_moves_the_deadline_on_the_target(temporal_client: Client):
    adapter = SwitchedAdapter()
    settings, activities, params = contained(adapter)
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        view = await wait_for(temporal_client, params.incident_id, verified)
        before = datetime.fromisoformat(view.steps[0].lease_expires_at or "")
        handle = temporal_client.get_workflow_handle(params.incident_id, result_type=IncidentView)
        step = await handle.execute_update(
            "extend",
            ExtendRequest(step_id="fallback:tsc-0001", principal=DORA, lease_s=600),
            result_type=StepView,
        )
        shown = await handle.query(STATE_QUERY, result_type=IncidentView)
    assert adapter.renewals == [datetime.fromisoformat(step.lease_expires_at)]
    assert (adapter.renewals[0] - before).total_seconds() == 600
    assert shown.steps[0].receipt is not None
    assert shown.steps[0].receipt.after["expires_at"] == str(adapter.renewals[0])


async def test_a_target_that_refuses_keeps_the_old_lease_and_says_so(temporal_client: Client):
    adapter = SwitchedAdapter(refuses=True)
    settings, activities, params = contained(adapter)
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        view = await wait_for(temporal_client, params.incident_id, verified)
        handle = temporal_client.get_workflow_handle(params.incident_id, result_type=IncidentView)
        try:
            await handle.execute_update(
                "extend", ExtendRequest(step_id="fallback:tsc-0001", principal=DORA, lease_s=600)
            )
        except WorkflowUpdateFailedError as exc:
            refusal = str(exc.cause)
        else:
            raise AssertionError("the extension was accepted though the target refused it")
        after = await handle.query(STATE_QUERY, result_type=IncidentView)
    assert "did not take the new deadline" in refusal
    assert after.steps[0].lease_expires_at == view.steps[0].lease_expires_at
    assert "lease.not_extended" in [e.kind for e in after.audit]
