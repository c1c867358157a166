"""Committed histories must still replay: a non-deterministic workflow change fails CI.

Regenerate with `tests/workflows/record_histories.py` only for deliberate, compatible
changes (running incidents replay the same way these do).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.city import CityWorkflow
from workflows.incident import IncidentWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))


def test_there_are_histories_to_replay():
    assert HISTORIES, "record some with tests/workflows/record_histories.py"


@pytest.mark.parametrize(
    "history",
    [WorkflowHistory.from_json(p.stem, p.read_text()) for p in HISTORIES],
    ids=[p.stem for p in HISTORIES],
)
async def test_committed_history_replays_deterministically(history: WorkflowHistory):
    replayer = Replayer(
        workflows=[IncidentWorkflow, CityWorkflow], data_converter=pydantic_data_converter
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
