"""A worker for tests/workflows/test_guard_crash.py, run as its own process so that the
test can lose it the way a machine loses one: SIGKILL, in the middle of a containment.

Its one step (a fallback on tsc-0001) is guarded: applying it breaks emergency dispatch,
whose health lives in a file (`broken`) so that this worker and the next one probe the
same service. With `--die-after apply` the worker kills itself once apply has changed
the target, before its workflow task can complete: the task's local activity results
are lost, the plan's signal (sent before apply) is not. With `--die-after rollback` it
does so once the guard's look after the change found dispatch down and the rollback
healed it. With `--verify-fails` the target never shows the change (verify fails), so
the step is rolled back as failed.

    PYTHONPATH=.:tests python tests/workflows/guard_crash_worker.py \
        ADDRESS QUEUE BROKEN [--die-after apply|rollback] [--verify-fails]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness import make_settings
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from workflow_fakes import SharedDependency, guarded_activities

from contracts.adapter import Receipt, Verification
from orchestrator.wiring.worker import build_worker

SETTLE_S = 0.5  # the workflow waits this long after the step before it probes again


class FileDependency(SharedDependency):
    """The fakes' emergency dispatch (broken by the step's apply, healed by its rollback),
    its health in a file: unhealthy while `broken` exists, for every worker process."""

    def __init__(self, broken: Path) -> None:
        self.broken = broken
        super().__init__(healthy=self.healthy, breaks_on_apply=True, settle_s=SETTLE_S)

    @property  # type: ignore[override]
    def healthy(self) -> bool:
        return not self.broken.exists()

    @healthy.setter
    def healthy(self, value: bool) -> None:
        if value:
            self.broken.unlink(missing_ok=True)
        else:
            self.broken.touch()


def then_die(call: Callable[..., Awaitable[Receipt]]) -> Callable[..., Awaitable[Receipt]]:
    """`call`, and the process SIGKILLed once it returned: before the workflow task that
    ran it can complete."""

    async def call_then_die(*args: Any, **kwargs: Any) -> Receipt:
        receipt = await call(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return receipt

    return call_then_die


async def never_shows_the_change(receipt: Receipt) -> Verification:
    if receipt.applied:
        return Verification(ok=False, observed={"value": 0}, detail="the change did not show")
    return Verification(ok=True, observed={"value": 0})


async def main(
    address: str, queue: str, broken: Path, *, die_after: str | None, verify_fails: bool
) -> None:
    state = broken.parent / f"worker-state-{os.getpid()}"  # the test's tmp_path, not /tmp
    settings = make_settings(1, state_dir=state).model_copy(update={"task_queue": queue})
    activities, adapter = guarded_activities(settings, FileDependency(broken))
    if die_after is not None:  # the adapter's `apply` or `rollback`
        setattr(adapter, die_after, then_die(getattr(adapter, die_after)))
    if verify_fails:
        adapter.verify = never_shows_the_change  # type: ignore[method-assign]
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    await build_worker(client, settings, activities).run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address")
    parser.add_argument("queue")
    parser.add_argument("broken", type=Path)
    parser.add_argument("--die-after", choices=["apply", "rollback"])
    parser.add_argument("--verify-fails", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(
        main(
            arguments.address,
            arguments.queue,
            arguments.broken,
            die_after=arguments.die_after,
            verify_fails=arguments.verify_fails,
        )
    )
