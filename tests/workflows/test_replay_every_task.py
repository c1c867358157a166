"""Determinism on every path, not only on committed histories: with no workflow cache the
worker replays the whole history at each task, so a command that a replay would order
differently (a patch checked in the wrong place, a clock read) fails here at once.

The scenario touches every versioned or concurrent path: a guarded automatic step, a
gated step with its dry-run preview, approvals, a lease extension and the release saga.
"""

from __future__ import annotations

from harness import make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import (
    FakeModbusAdapter,
    ScriptedEngine,
    SharedDependency,
    fallback_step,
    new_incident,
    send,
)

from contracts.incident import (
    ApproveRequest,
    IncidentStatus,
    IncidentView,
    Principal,
    ReleaseRequest,
    StepState,
    StepView,
)
from orchestrator.activities import ContainmentActivities
from orchestrator.wiring.inventory import Inventory

ALICE = Principal(name="alice", roles=["responder"])
DORA = Principal(name="dora", roles=["duty-officer"])


async def test_every_path_replays_deterministically(temporal_client: Client):
    settings = make_settings(1)
    dependency = SharedDependency(breaks_on_apply=False, settle_s=0.5)  # the watch's timer
    engine = ScriptedEngine(
        [
            fallback_step("tsc-0001", guard={"essential": ["emergency-dispatch"]}),
            fallback_step(
                "tsc-0002", approval={"required": 2, "must_include_roles": ["duty-officer"]}
            ),
        ]
    )
    activities = ContainmentActivities(
        engine,
        Inventory.load(settings.policy_dir),
        {"modbus": FakeModbusAdapter()},
        guard=dependency,
    )
    params = new_incident()
    handle = temporal_client.get_workflow_handle(params.incident_id)
    async with running_worker(temporal_client, settings, activities, replay_every_task=True):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: len(v.steps) == 2 and all(s.preview or s.automatic for s in v.steps),
        )
        for who in (ALICE, DORA):
            await handle.execute_update(
                "approve",
                ApproveRequest(step_id="fallback:tsc-0002", principal=who, reason="ok"),
                result_type=StepView,
            )
        await wait_for(  # contained, and the guard's second look (after its timer) done
            temporal_client,
            params.incident_id,
            lambda v: (
                v.status is IncidentStatus.CONTAINED and "guard.after" in {e.kind for e in v.audit}
            ),
        )
        released = await handle.execute_update(
            "release", ReleaseRequest(principal=DORA, reason="done"), result_type=IncidentView
        )
    assert released.status is IncidentStatus.RELEASED
    assert {s.state for s in released.steps} == {StepState.ROLLED_BACK}
    kinds = {e.kind for e in released.audit}
    assert {"guard.before", "guard.after", "step.preview"} <= kinds
