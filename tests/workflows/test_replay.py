"""Committed histories must still replay, and there must be some from the current code.

Every folder under histories/ holds the histories recorded from one version of workflows/
(`make histories`); old folders stay, because incidents started under old code are still
running somewhere and the current code must replay them. A change to workflows/ without
a new recording fails here, so nobody ships workflow code that was never replayed.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from workflow_histories import HISTORIES, source_hash

from workflows.city import CityWorkflow
from workflows.incident import IncidentWorkflow

RECORDED = sorted(HISTORIES.rglob("*.json"))
# The paths every recording must cover (record_histories.SCENARIOS).
PATHS = {
    "auto-contain-release",
    "four-eyes-deny-extend",
    "lease-expiry",
    "guard-rollback",
    "drift-reapply",
    "continue-as-new-first-run",
    "continue-as-new-next-run",
    "rest-release-run",
    "rest-idle-run",
    "rest-next-incident-recheck",
    "city-pause-resume",
}


def test_histories_were_recorded_from_the_current_workflow_code():
    current = HISTORIES / source_hash()
    assert current.is_dir(), (
        f"workflows/ (or contracts/) changed since the last recording: run `make histories` "
        f"and commit "
        f"{current.relative_to(HISTORIES.parent.parent.parent)}"
    )
    assert {p.stem for p in current.glob("*.json")} >= PATHS


@pytest.mark.parametrize(
    "history",
    [WorkflowHistory.from_json(p.stem, p.read_text()) for p in RECORDED],
    ids=[p.relative_to(HISTORIES).as_posix() for p in RECORDED],
)
async def test_committed_history_replays_deterministically(history: WorkflowHistory):
    replayer = Replayer(
        workflows=[IncidentWorkflow, CityWorkflow], data_converter=pydantic_data_converter
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
