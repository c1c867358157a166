"""A finding that arrives while an incident is being released is not lost with it: the
release completes, and the finding opens the next incident for the same entity, which
decides and contains on its own (same incident id, the same audit chain)."""

from __future__ import annotations

import asyncio

from harness import make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import (
    FakeModbusAdapter,
    ScriptedEngine,
    fallback_step,
    finding,
    new_incident,
    send,
)

from contracts.adapter import Receipt
from contracts.incident import IncidentStatus, IncidentView, Principal, ReleaseRequest, StepState
from orchestrator.activities import ContainmentActivities
from orchestrator.wiring.inventory import Inventory


class SlowRollback(FakeModbusAdapter):
    """A rollback that holds until the test lets it finish: the window in which the next
    finding arrives is the test's to choose, not a guess at how fast the machine is."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.proceed = asyncio.Event()

    async def rollback(self, receipt: Receipt) -> Receipt:
        self.started.set()
        await self.proceed.wait()
        return await super().rollback(receipt)


async def test_finding_during_release_opens_the_next_incident(temporal_client: Client):
    settings = make_settings(1)
    engine = ScriptedEngine([fallback_step("tsc-0001")])
    adapter = SlowRollback()
    activities = ContainmentActivities(
        engine, Inventory.load(settings.policy_dir), {"modbus": adapter}
    )
    params = new_incident()
    handle = temporal_client.get_workflow_handle(params.incident_id)
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params, finding("first"))
        await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )
        release = asyncio.ensure_future(
            handle.execute_update(
                "release",
                ReleaseRequest(
                    principal=Principal(name="dora", roles=["duty-officer"]), reason="x"
                ),
                result_type=IncidentView,
            )
        )
        await asyncio.wait_for(adapter.started.wait(), 30)  # the rollback is under way
        await send(temporal_client, settings, params, finding("second"))
        adapter.proceed.set()
        released = await release
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: v.run == 2 and v.status is IncidentStatus.CONTAINED,
        )
    assert released.status is IncidentStatus.RELEASED
    assert [f.finding_info.uid for f in released.findings] == ["first"]
    assert [f.finding_info.uid for f in view.findings] == ["second"]
    assert view.steps[0].state is StepState.VERIFIED
    assert len(engine.inputs) == 2, "the next incident decided on its own finding"
    assert view.audit[0].seq > released.audit_total - 1, "one audit chain, continued"
