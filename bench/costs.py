"""Where a bench's work goes: CPU time per process, and the Temporal server's own counts.

On a 2-core machine the API, the worker, the dev server and the load generator share the
cores, so a rate says little about which of them to make cheaper. A `Costs` window reads
each process's CPU time from /proc (Linux) and the dev server's Prometheus counters
(`--metrics-port`) at its start and end; divided by the findings or incidents the window
handled, that is the cost of one, per process, beside the bare baseline's.

The arithmetic that follows is the useful part: CPU per finding times the goal's rate is
the cores the goal needs. More than the machine has means no amount of waiting in the
right place reaches it; only making some process cheaper per finding does.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The server's operations worth counting: its writes and the task round trips behind them.
PERSISTENCE_OPERATIONS = (
    "CreateWorkflowExecution",
    "UpdateWorkflowExecution",
    "GetWorkflowExecution",
    "ReadHistoryBranch",
)
SERVICE_OPERATIONS = (
    "SignalWithStartWorkflowExecution",
    "RecordWorkflowTaskStarted",
    "RespondWorkflowTaskCompleted",
    "RecordActivityTaskStarted",
    "RespondActivityTaskCompleted",
    "DescribeWorkflowExecution",
)
_SAMPLE = re.compile(r"^(persistence_requests|service_requests)\{(?P<labels>[^}]*)\} (?P<v>\S+)$")
_OPERATION = re.compile(r'operation="([^"]+)"')
# Every call that touches a workflow passes the history service once (the frontend and
# matching count their own halves of some of them): count it there.
_HISTORY = 'service_name="history"'
# The server's /metrics lags its calls (read at once, a window of signal-with-starts
# counted 85 % of them here): wait this long before each reading, so a window's calls
# are in its own counts (tests/test_bench_costs.py checks exactly one per call).
FLUSH_S = 1.5


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of stat(5), counted from the state (field 3) after the command.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """Direct children of a process (every thread's list)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def temporal_server_pids(parent: int, metrics_port: int | None = None) -> list[int]:
    """The dev servers a process started (`temporal server start-dev`); with
    `metrics_port`, only the one serving its counters there."""
    found = []
    for child in children(parent):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"start-dev" not in command or not any(p.endswith(b"temporal") for p in command):
            continue
        if metrics_port is None or _flag(command, b"--metrics-port") == str(metrics_port):
            found.append(child)
    return found


def temporal_server_pid(parent: int, metrics_port: int | None = None) -> int | None:
    """The first of `temporal_server_pids`, if any."""
    return next(iter(temporal_server_pids(parent, metrics_port)), None)


def _flag(command: list[bytes], name: bytes) -> str | None:
    """The value after `name` in a command line, if it is there."""
    place = command.index(name) + 1 if name in command else len(command)
    return command[place].decode() if place < len(command) else None


def server_counts(metrics_url: str) -> dict[str, float]:
    """The dev server's history-service calls and persistence requests, by operation."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        sample = _SAMPLE.match(line)
        if sample is None or _HISTORY not in sample.group("labels"):
            continue
        operation = _OPERATION.search(sample.group("labels"))
        if operation is None:
            continue
        name = operation.group(1)
        kind = sample.group(1)
        if (kind == "persistence_requests" and name in PERSISTENCE_OPERATIONS) or (
            kind == "service_requests" and name in SERVICE_OPERATIONS
        ):
            counts[name] = counts.get(name, 0.0) + float(sample.group("v"))
    return counts


@dataclass
class Costs:
    """One window's CPU per process and server operations, per unit of work."""

    processes: Mapping[str, int]  # name -> pid
    metrics_url: str | None = None
    _cpu: dict[str, float] = field(default_factory=dict)
    _counts: dict[str, float] = field(default_factory=dict)
    _started: float = 0.0

    async def start(self) -> None:
        if self.metrics_url is not None:
            await asyncio.sleep(FLUSH_S)  # earlier work's counts land before the window
            self._counts = await asyncio.to_thread(server_counts, self.metrics_url)
        self._cpu = {name: cpu_seconds(pid) for name, pid in self.processes.items()}
        self._started = time.perf_counter()

    async def stop(self, units: int) -> dict[str, Any]:
        """Per unit (a finding, an incident): CPU ms by process, server operations; and how
        many of the machine's cores the window kept busy."""
        elapsed = time.perf_counter() - self._started
        used = {n: cpu_seconds(p) - self._cpu[n] for n, p in self.processes.items()}
        counts: dict[str, float] = {}
        if self.metrics_url is not None:
            await asyncio.sleep(FLUSH_S)
            counts = await asyncio.to_thread(server_counts, self.metrics_url)
        per_unit = max(units, 1)
        result: dict[str, Any] = {
            "cpu_ms_per_unit": {n: round(s * 1000 / per_unit, 3) for n, s in used.items()},
            "cpu_ms_per_unit_total": round(sum(used.values()) * 1000 / per_unit, 3),
            "cores_busy": round(sum(used.values()) / elapsed, 2) if elapsed else None,
        }
        if counts:
            result["server_operations_per_unit"] = {
                name: round((counts.get(name, 0.0) - self._counts.get(name, 0.0)) / per_unit, 2)
                for name in sorted(counts)
                if counts.get(name, 0.0) > self._counts.get(name, 0.0)
            }
        return result


def cores_needed(cpu_ms_per_unit: float, rate_per_s: float) -> float:
    """Cores a rate needs at a measured CPU cost per unit."""
    return round(cpu_ms_per_unit * rate_per_s / 1000, 2)


def named(pairs: Iterable[tuple[str, int | None]]) -> dict[str, int]:
    """The processes that exist, by name (a bench target may lack one)."""
    return {name: pid for name, pid in pairs if pid is not None}
