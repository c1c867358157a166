"""Record workflow histories for the replay test (tests/workflows/test_replay.py).

Run after an intentional, compatible change to the workflows, and commit the result:
    .venv/bin/python tests/workflows/record_histories.py
A change that makes these histories fail to replay would break running incidents.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conftest import free_port
from harness import make_settings, running_worker, wait_for
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from workflow_fakes import (
    ScriptedEngine,
    fallback_step,
    finding,
    new_incident,
    scripted_activities,
    send,
)

from orchestrator.lab.traffic import TrafficLab
from orchestrator.temporal import temporal_binary
from workflows.state import (
    ApproveRequest,
    IncidentStatus,
    IncidentView,
    Principal,
    ReleaseRequest,
    StepState,
)

OUT = Path(__file__).resolve().parent / "histories"
GATED = {
    "required": 2,
    "roles": ["responder", "duty-officer"],
    "must_include_roles": ["duty-officer"],
    "timeout_s": 600,
}


async def record() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()), data_converter=pydantic_data_converter
    )
    lab = TrafficLab(port=free_port())
    await lab.start()
    client = env.client
    try:
        settings = make_settings(lab.port, state_dir=Path(tempfile.mkdtemp()))
        engine = ScriptedEngine(
            [fallback_step("tsc-0001"), fallback_step("tsc-0002", approval=GATED, lease_s=2)]
        )
        async with running_worker(client, settings, scripted_activities(settings, engine)):
            params = new_incident()
            await send(client, settings, params, webhook_id="wh-1")
            await send(client, settings, params, webhook_id="wh-1")  # a duplicate
            await send(client, settings, params, finding(resources=[{"uid": "tsc-0003"}]))
            await wait_for(
                client, params.incident_id, lambda v: v.status is IncidentStatus.AWAITING_APPROVAL
            )
            handle = client.get_workflow_handle(params.incident_id, result_type=IncidentView)
            for who in (
                Principal(name="alice", roles=["responder"]),
                Principal(name="dora", roles=["duty-officer"]),
            ):
                await handle.execute_update(
                    "approve",
                    ApproveRequest(step_id="fallback:tsc-0002", principal=who, reason="ok"),
                )
            await wait_for(
                client, params.incident_id, lambda v: v.steps[1].state is StepState.ROLLED_BACK
            )  # lease expiry
            await handle.execute_update(
                "release", ReleaseRequest(principal=Principal(name="dora"), reason="done")
            )
            await handle.result()
            history = await handle.fetch_history()
            (OUT / "approve-lease-release.json").write_text(history.to_json())
            print(f"recorded {len(history.events)} events", file=sys.stderr)
    finally:
        await lab.stop()
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
