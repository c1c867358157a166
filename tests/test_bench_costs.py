"""bench/costs.py: the numbers the storm and scale benches argue from are read right.

A dev server of its own (with a metrics port) takes signal-with-starts in a window: the
window must count exactly those calls, once each, and charge the server's CPU to the
server's process; a process that burns CPU must show it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from temporalio.common import WorkflowIDConflictPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from common import dev_server, free_port
from costs import (
    Costs,
    cores_needed,
    cpu_seconds,
    named,
    temporal_server_pid,
    temporal_server_pids,
)

SIGNALS = 40


def test_a_busy_process_shows_its_cpu_and_a_gone_one_shows_none() -> None:
    busy = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass",
        ]
    )
    busy.wait(timeout=30)
    # Reaped: /proc no longer has it, so the reading is 0, never an exception.
    assert cpu_seconds(busy.pid) == 0.0
    burner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nend = time.process_time() + 0.4\n"
            "while time.process_time() < end: pass\ntime.sleep(30)",
        ]
    )
    try:
        for _ in range(300):
            if cpu_seconds(burner.pid) >= 0.35:
                break
            time.sleep(0.05)
        assert 0.35 <= cpu_seconds(burner.pid) < 5
    finally:
        burner.kill()
        burner.wait()


# The suite's dev server is this process's child too: the window must find its own.
@pytest.mark.usefixtures("temporal_env")
async def test_a_window_counts_its_own_signal_with_starts_once_each() -> None:
    metrics_port = free_port()
    env = await dev_server(metrics_port)
    try:
        server = temporal_server_pid(os.getpid(), metrics_port)
        assert server is not None, "the dev server this test started is not a child of it"
        beside = temporal_server_pids(os.getpid())
        assert len(beside) >= 2, "the suite's dev server should be running beside it"
        costs = Costs(
            named([("temporal_server", server), ("client", os.getpid())]),
            f"http://127.0.0.1:{metrics_port}/metrics",
        )
        queue = f"costs-{uuid.uuid4().hex[:6]}"
        await costs.start()
        for index in range(SIGNALS):
            await env.client.start_workflow(
                "NobodyRunsThis",
                id=f"costs-{queue}-{index % 4}",
                task_queue=queue,
                start_signal="finding",
                start_signal_args=[index],
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        result = await costs.stop(SIGNALS)
    finally:
        await env.shutdown()
    operations = result["server_operations_per_unit"]
    assert operations["SignalWithStartWorkflowExecution"] == 1.0
    # Four workflows created, each signal a write: the server's own accounting.
    assert operations["CreateWorkflowExecution"] == 4 / SIGNALS
    assert operations["UpdateWorkflowExecution"] >= 1 - 4 / SIGNALS
    cpu = result["cpu_ms_per_unit"]
    assert cpu["temporal_server"] > 0 and cpu["client"] > 0
    assert abs(result["cpu_ms_per_unit_total"] - sum(cpu.values())) < 0.01


def test_cores_needed_is_cost_times_rate() -> None:
    assert cores_needed(2.5, 800) == 2.0
    assert cores_needed(0.0, 800) == 0.0
