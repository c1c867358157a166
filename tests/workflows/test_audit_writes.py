"""The audit lists every write an adapter made, late and refused ones included.

A write that landed after its timeout (tests/adapters/services/test_late_writes.py) is
evidence a responder needs: the audit shows it beside the step, not only its effect.
"""

from __future__ import annotations

from datetime import UTC, datetime

from harness import make_settings, release_and_end, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import FakeModbusAdapter, ScriptedEngine, fallback_step, new_incident, send

from contracts.adapter import Receipt, StepCommand, WriteRecord
from contracts.incident import Principal, ReleaseRequest, StepState
from orchestrator.activities import ContainmentActivities
from orchestrator.wiring.inventory import Inventory

AT = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


class WritingAdapter(FakeModbusAdapter):
    """Reports a first write that landed late, then the one that was acknowledged."""

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        receipt = await super().apply(command, key=key)
        writes = [
            WriteRecord(value=1, purpose="apply", at=AT, outcome="landed_late", detail="2.4 s"),
            WriteRecord(value=1, purpose="apply", at=AT, outcome="acknowledged"),
        ]
        return receipt.model_copy(update={"writes": writes})

    async def rollback(self, receipt: Receipt) -> Receipt:
        undone = await super().rollback(receipt)
        restore = WriteRecord(value=0, purpose="rollback", at=AT, outcome="acknowledged")
        return undone.model_copy(update={"writes": [*receipt.writes, restore]})


async def test_applied_and_rolled_back_steps_list_their_writes(temporal_client: Client):
    settings = make_settings(1)
    engine = ScriptedEngine([fallback_step("tsc-0001")])
    inventory = Inventory.load(settings.policy_dir)
    activities = ContainmentActivities(engine, inventory, {"modbus": WritingAdapter()})
    params = new_incident()
    async with running_worker(temporal_client, settings, activities):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: bool(v.steps) and v.steps[0].state is StepState.VERIFIED,
        )
        view = await release_and_end(
            temporal_client,
            params.incident_id,
            ReleaseRequest(principal=Principal(name="dora"), reason="done"),
        )
    applied = next(e for e in view.audit if e.kind == "step.applied")
    rolled_back = next(e for e in view.audit if e.kind == "step.rolled_back")
    assert [w["outcome"] for w in applied.detail["writes"]] == ["landed_late", "acknowledged"]
    assert [w["purpose"] for w in rolled_back.detail["writes"]] == ["rollback"]
