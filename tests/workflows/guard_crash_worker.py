"""A worker for tests/workflows/test_guard_crash.py, run as its own process so that the
test can lose it the way a machine loses one: SIGKILL, in the middle of a containment.

Its one step (a fallback on tsc-0001) is guarded: applying it breaks emergency dispatch,
whose health lives in a file (`broken`) so that this worker and the next one probe the
same service. With `--die-after-apply` the worker kills itself once apply has changed
the target, before its workflow task can complete: the task's local activity results
are lost, the plan's signal (sent before apply) is not.

    PYTHONPATH=.:tests python tests/workflows/guard_crash_worker.py \
        ADDRESS QUEUE BROKEN [--die-after-apply]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from harness import make_settings
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from workflow_fakes import FakeModbusAdapter, ScriptedEngine, fallback_step

from contracts.adapter import Receipt, StepCommand
from contracts.incident import GuardReport, ServiceHealth
from orchestrator.activities import ContainmentActivities
from orchestrator.wiring.inventory import Inventory
from orchestrator.wiring.worker import build_worker

SERVICE = "emergency-dispatch"
SETTLE_S = 0.5  # the workflow waits this long after the step before it probes again


class FileDependency:
    """Emergency dispatch, unhealthy while `broken` exists."""

    settle_s = SETTLE_S

    def __init__(self, broken: Path) -> None:
        self.broken = broken

    async def check(self, services: list[str], *, settle: bool) -> GuardReport:
        del settle  # the workflow's own timer waits (SETTLE_S)
        healthy = not self.broken.exists()
        return GuardReport(
            services={
                name: ServiceHealth(healthy=healthy, detail="ok" if healthy else "503")
                for name in services
            }
        )


class BreakingAdapter(FakeModbusAdapter):
    """Applying breaks dispatch (and, when told to, kills this worker right after);
    rolling back heals it."""

    def __init__(self, broken: Path, *, die_after_apply: bool) -> None:
        super().__init__()
        self.broken = broken
        self.die_after_apply = die_after_apply

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        self.broken.touch()
        receipt = await super().apply(command, key=key)
        if self.die_after_apply:
            os.kill(os.getpid(), signal.SIGKILL)
        return receipt

    async def rollback(self, receipt: Receipt) -> Receipt:
        self.broken.unlink(missing_ok=True)
        return await super().rollback(receipt)


async def main(address: str, queue: str, broken: Path, *, die_after_apply: bool) -> None:
    state = broken.parent / f"worker-state-{os.getpid()}"  # the test's tmp_path, not /tmp
    settings = make_settings(1, state_dir=state).model_copy(update={"task_queue": queue})
    engine = ScriptedEngine([fallback_step("tsc-0001", guard={"essential": [SERVICE]})])
    adapter = BreakingAdapter(broken, die_after_apply=die_after_apply)
    activities = ContainmentActivities(
        engine,
        Inventory.load(settings.policy_dir),
        {"modbus": adapter},
        guard=FileDependency(broken),
    )
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    await build_worker(client, settings, activities).run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address")
    parser.add_argument("queue")
    parser.add_argument("broken", type=Path)
    parser.add_argument("--die-after-apply", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(
        main(
            arguments.address,
            arguments.queue,
            arguments.broken,
            die_after_apply=arguments.die_after_apply,
        )
    )
