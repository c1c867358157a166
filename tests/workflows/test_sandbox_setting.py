"""Production workers run the workflows outside temporalio's sandbox (it re-imported the
workflow module for every run: 35-40% of time-to-contain); the suite runs them inside it,
so workflow code that reads the clock or opens a file fails here, not in a city."""

from __future__ import annotations

from pathlib import Path

from harness import make_settings
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from orchestrator.config import Settings
from orchestrator.wiring.worker import build_activities, build_worker


async def test_the_suite_sandboxes_the_workflows_and_production_does_not(
    temporal_client: Client, tmp_path: Path
) -> None:
    suite = make_settings(lab_port=1)
    production = Settings(state_dir=tmp_path)
    for settings, runner in (
        (suite, SandboxedWorkflowRunner),
        (production, UnsandboxedWorkflowRunner),
    ):
        worker = build_worker(temporal_client, settings, build_activities(settings))
        assert isinstance(worker.config()["workflow_runner"], runner)
