"""bench/common.py median_timeline: where a time-to-contain row's time goes, event by event,
from the runs that went the most common way (a retried activity must not shift the rest)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from common import median_timeline


def test_the_most_common_shape_wins_and_each_event_is_its_median() -> None:
    usual = [("STARTED", 0.001), ("TASK", 0.010), ("DONE", 0.030)]
    slower = [("STARTED", 0.003), ("TASK", 0.020), ("DONE", 0.050)]
    quickest = [("STARTED", 0.002), ("TASK", 0.005), ("DONE", 0.020)]
    retried = [("STARTED", 0.001), ("TASK", 0.010), ("RETRY", 0.5), ("DONE", 0.9)]
    summary = median_timeline([usual, retried, slower, quickest])
    assert summary == {
        "runs": 3,
        "of": 4,
        "events_ms": [["STARTED", 2.0], ["TASK", 10.0], ["DONE", 30.0]],
    }


def test_no_runs_no_timeline() -> None:
    assert median_timeline([]) == {}
