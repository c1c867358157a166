"""A worker for tests/workflows/test_decision_crash.py, run as its own process so that the
test can lose it the way a machine loses one (SIGKILL) and start another.

Its policy is scripted: every decision is the steps in STEPS (a JSON list of decision
steps), read again at each decision, so the test can make the decision after a crash
differ from the one before it. Its adapters are the real ones, against the lab's Modbus
controllers at LAB_PORT.

    PYTHONPATH=.:tests python tests/workflows/scripted_worker.py ADDRESS QUEUE LAB_PORT STEPS
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

from harness import make_settings
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from workflow_fakes import ScriptedEngine, scripted_activities

from contracts.decision import Decision, DecisionStep
from orchestrator.policy.models import ContainmentInput
from orchestrator.wiring.worker import build_worker


class StepsFileEngine(ScriptedEngine):
    """The scripted policy, its steps read from a file at every decision."""

    def __init__(self, steps: Path) -> None:
        self.path = steps
        super().__init__([])

    def decide(self, policy_input: ContainmentInput) -> Decision:
        listed: list[dict[str, Any]] = json.loads(self.path.read_text())
        self.steps = [DecisionStep.model_validate(step) for step in listed]
        return super().decide(policy_input)


async def main(address: str, queue: str, lab_port: int, steps: Path) -> None:
    state = steps.parent / f"worker-state-{os.getpid()}"  # the test's tmp_path, not /tmp
    settings = make_settings(lab_port, state_dir=state).model_copy(update={"task_queue": queue})
    activities = scripted_activities(settings, StepsFileEngine(steps))
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    await build_worker(client, settings, activities).run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address")
    parser.add_argument("queue")
    parser.add_argument("lab_port", type=int)
    parser.add_argument("steps", type=Path)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.address, arguments.queue, arguments.lab_port, arguments.steps))
