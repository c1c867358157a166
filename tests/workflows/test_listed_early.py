"""A step waiting for a person is in the incident list at once, even while another step
of the same decision is still being applied against a slow target (LIST_EARLY_PATCH).

Before, the list (and the console's approvals count, and the visibility query behind
`?awaiting_approval=true`) showed the incident as open with no steps until every apply
of the decision had returned, which a retrying adapter can stretch to minutes.
"""

from __future__ import annotations

import asyncio

from harness import make_settings, release_and_end, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import FakeModbusAdapter, ScriptedEngine, fallback_step, new_incident, send

from contracts.adapter import Receipt, StepCommand
from contracts.incident import Principal, ReleaseRequest, StepState
from contracts.visibility import Attribute
from orchestrator.activities import ContainmentActivities
from orchestrator.wiring.inventory import Inventory

DORA = Principal(name="dora", roles=["duty-officer"])


class SlowTarget(FakeModbusAdapter):
    """A target whose apply does not return until the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.go = asyncio.Event()

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        self.entered.set()
        await self.go.wait()
        return await super().apply(command, key=key)


async def listed_as_awaiting(client: Client, workflow_id: str) -> bool:
    query = f"WorkflowId = '{workflow_id}' AND {Attribute.AWAITING_APPROVAL.value} = true"
    return [e async for e in client.list_workflows(query)] != []


async def test_a_waiting_step_is_listed_while_another_step_is_still_applying(
    temporal_client: Client,
):
    settings = make_settings(1)
    gated = {"required": 1, "timeout_s": 600}
    engine = ScriptedEngine([fallback_step("tsc-0001", approval=gated), fallback_step("tsc-0002")])
    target = SlowTarget()
    inventory = Inventory.load(settings.policy_dir)
    activities = ContainmentActivities(engine, inventory, {"modbus": target})
    params = new_incident()
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        await asyncio.wait_for(target.entered.wait(), 15)
        listed = False
        for _ in range(100):  # visibility is eventually consistent: a little while
            listed = await listed_as_awaiting(temporal_client, params.incident_id)
            if listed:
                break
            await asyncio.sleep(0.1)
        still_applying = not target.go.is_set()
        target.go.set()
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: any(s.state is StepState.VERIFIED for s in v.steps),
        )
        await release_and_end(
            temporal_client, params.incident_id, ReleaseRequest(principal=DORA, reason="done")
        )
    assert still_applying
    assert listed, "the waiting step was not in the list while the other step applied"
