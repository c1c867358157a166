"""Fault drills in CI (a shorter run of `make drill`): a worker SIGKILLed mid-write, and
one of two workers and one of two APIs SIGKILLed mid-storm. Every acknowledged finding
must be in an incident, every step applied exactly once on the controllers, a lease set
before the crash must still expire after it, and the audit trail the workers shared must
verify intact."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from drills.run import drill_worker_sigkill, storm_drill

pytestmark = pytest.mark.e2e


async def test_worker_sigkill_mid_write_applies_once_and_keeps_the_lease():
    result = await drill_worker_sigkill(kills=2)
    assert result["complete_pct"] == 100.0
    assert result["duplicates"] == 0
    assert result["leases_honoured"] is True
    assert result["resume_max_s"] <= 30
    assert result["audit_intact"] is True, "each new worker continued the killed one's chains"


async def test_losing_one_worker_and_one_api_mid_storm_loses_nothing():
    result = await storm_drill("pair", 300, apis=2, workers=2, disrupt="pair")
    assert result["acknowledged"] == result["findings"], "the surviving API took every finding"
    assert result["lost"] == 0
    assert result["duplicates"] == 0
    assert result["steps_exactly_once"] == "4/4"
    # The two workers wrote one trail in one state dir; the survivor continued the chains
    # the other began (orchestrator/audit/shared.py).
    assert result["audit_intact"] is True
