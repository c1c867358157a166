"""Scale and growth: many open incidents awaiting approval on ONE worker process.

Opens incidents about the essential substation RTU (two approvers needed, so each waits
with its approval timer) in steps up to --max (default 10,000). At each level it reports
the worker's RSS, time-to-contain of fresh auto-approved traffic incidents (released
again so the blast-radius budget never fills), and, at the top level, the round-trip of
an approval (a workflow Update) to random waiting incidents, most of them evicted from
the worker's cache and so replayed. Baseline in the same run: the same time-to-contain
measured with no incident waiting (the first level, 0).
    .venv/bin/python bench/scale.py [--max 10000] [--levels 0,10,1000,10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from temporalio.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dev_server, emit, free_port, machine, percentiles_ms, spawn
from costs import Costs, cores_needed, named, temporal_server_pid

from contracts.findings import Finding, FindingEnvelope
from contracts.incident import (
    ApproveRequest,
    IncidentParams,
    IncidentStatus,
    IncidentView,
    Principal,
    ReleaseRequest,
)
from orchestrator import logs
from orchestrator.api.context import ApiContext
from orchestrator.api.listing import Filters, list_page
from orchestrator.config import Settings
from orchestrator.lab.substation import SubstationLab
from orchestrator.lab.traffic import TrafficLab
from orchestrator.responders.grants import approval_key, granted
from orchestrator.temporal.incidents import IncidentClient

BULKHEAD = str(Path(sys.executable).parent / "bulkhead")
EXAMPLE = (
    Path(__file__).resolve().parent.parent / "examples/findings/traffic-controller-compromise.json"
)
RESPONDER = Principal(name="bench-responder", roles=["responder"])
DUTY = Principal(name="bench-duty", roles=["duty-officer"])
CONCURRENCY = 32
# Issue #18: 10,000 waiting incidents opened within 2 minutes.
GOAL_OPEN_PER_S = 10_000 / 120


def finding(asset: str, uid: str) -> Finding:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text())
    document["finding_info"] = {"uid": uid, "title": "scale bench"}
    document["resources"] = [{"uid": asset}]
    document["evidences"] = []
    return Finding.model_validate(document)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def query(client: Client, incident_id: str) -> IncidentView | None:
    try:
        return await IncidentClient(client).state(incident_id)
    except Exception:  # noqa: BLE001 - not started yet
        return None


async def open_waiting(client: Client, settings: Settings, start: int, stop: int) -> list[str]:
    """Incidents about the essential RTU: each decides, then waits for two approvers."""
    semaphore = asyncio.Semaphore(CONCURRENCY)
    ids = [f"inc-scale-{i}" for i in range(start, stop)]

    async def one(incident_id: str) -> None:
        async with semaphore:
            params = IncidentParams(incident_id=incident_id, entity=incident_id)
            envelope = FindingEnvelope(
                finding=finding("rtu-e01", incident_id), source="bench", received_at_ms=0
            )
            await IncidentClient(client).deliver(settings, params, envelope)

    await asyncio.gather(*(one(i) for i in ids))
    # Every incident of the batch has decided before the level is measured.
    for incident_id in ids[-50:]:
        while True:
            view = await query(client, incident_id)
            if view is not None and view.status is IncidentStatus.AWAITING_APPROVAL:
                break
            await asyncio.sleep(0.05)
    return ids


async def time_to_contain(client: Client, settings: Settings, n: int) -> list[float]:
    samples = []
    for index in range(n):
        incident_id = f"inc-ttc-{uuid.uuid4().hex[:10]}"
        params = IncidentParams(incident_id=incident_id, entity=incident_id)
        envelope = FindingEnvelope(
            finding=finding(f"tsc-000{1 + index % 4}", incident_id),
            source="bench",
            received_at_ms=0,
        )
        started = time.perf_counter()
        await IncidentClient(client).deliver(settings, params, envelope)
        while True:
            view = await query(client, incident_id)
            if view is not None and view.status is IncidentStatus.CONTAINED:
                break
            if view is not None and view.status is IncidentStatus.FAILED:
                raise RuntimeError(f"{incident_id} failed: {view.escalations}")
            await asyncio.sleep(0.002)
        samples.append(time.perf_counter() - started)
        release = ReleaseRequest(principal=DUTY, reason="bench")
        await IncidentClient(client).release(
            incident_id, granted(approval_key(settings), release, "release", incident_id)
        )
    return samples


async def approval_round_trips(
    client: Client, settings: Settings, waiting: list[str], n: int
) -> list[float]:
    samples = []
    for incident_id in random.sample(waiting, min(n, len(waiting))):
        view = await query(client, incident_id)
        if view is None or not view.steps:
            print(f"# {incident_id} did not answer its query; skipped", file=sys.stderr)
            continue
        request = ApproveRequest(step_id=view.steps[0].id, principal=RESPONDER, reason="bench")
        request = granted(approval_key(settings), request, "approve", incident_id)
        started = time.perf_counter()
        await IncidentClient(client).approve(incident_id, request)
        samples.append(time.perf_counter() - started)
    return samples


async def list_latency(client: Client, settings: Settings, n: int = 20) -> list[float]:
    """`GET /v1/incidents?status=awaiting_approval&limit=200` as the API answers it."""
    context = cast(ApiContext, SimpleNamespace(client=client, settings=settings))
    samples: list[float] = []
    for _ in range(n):
        started = time.perf_counter()
        await list_page(context, Filters(status=IncidentStatus.AWAITING_APPROVAL), limit=200)
        samples.append(time.perf_counter() - started)
    return samples


async def main(levels: list[int], contain_samples: int, approvals: int) -> None:
    logs.configure("warning")
    metrics_port = free_port()
    env = await dev_server(metrics_port)
    lab = TrafficLab(port=free_port())
    await lab.start()
    # The RTU the waiting incidents are about: each dry-runs its step on it (a preview for
    # the approvers), as it would with `bulkhead up`.
    substation = SubstationLab(port=free_port())
    await substation.start()
    state = Path(tempfile.mkdtemp(prefix="bulkhead-scale-"))
    queue = f"scale-{uuid.uuid4().hex[:6]}"
    address = env.client.service_client.config.target_host
    settings = Settings(
        task_queue=queue,
        state_dir=state,
        lab_modbus_port=lab.port,
        lab_opcua_port=substation.port,
        temporal_address=address,
    )
    environ = {
        **os.environ,
        "BULKHEAD_TASK_QUEUE": queue,
        "BULKHEAD_STATE_DIR": str(state),
        "BULKHEAD_LAB_MODBUS_PORT": str(lab.port),
        "BULKHEAD_LAB_OPCUA_PORT": str(substation.port),
        "BULKHEAD_TEMPORAL_ADDRESS": address,
        "BULKHEAD_LOG_LEVEL": "warning",
    }
    worker = spawn([BULKHEAD, "worker"], environ)
    # The labs run in this process: its CPU is the controllers' and the RTU's as well.
    processes = named(
        [
            ("temporal_server", temporal_server_pid(os.getpid(), metrics_port)),
            ("worker", worker.pid),
            ("bench_and_labs", os.getpid()),
        ]
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    rows: list[dict[str, Any]] = []
    try:
        await asyncio.sleep(2)  # the worker connects and creates the city record
        waiting: list[str] = []
        for level in levels:
            print(f"# opening incidents up to {level} awaiting approval", file=sys.stderr)
            opening = level - len(waiting)
            costs = Costs(processes, metrics_url) if opening else None
            if costs is not None:
                await costs.start()
            started = time.perf_counter()
            waiting += await open_waiting(env.client, settings, len(waiting), level)
            opened_s = time.perf_counter() - started
            open_costs = await costs.stop(opening) if costs is not None else None
            print(f"# measuring time-to-contain with {level} waiting", file=sys.stderr)
            ttc = percentiles_ms(await time_to_contain(env.client, settings, contain_samples))
            rows.append(
                {
                    "open_incidents": level,
                    "opened_in_s": round(opened_s, 1),
                    "worker_rss_mib": rss_mib(worker.pid),
                    "time_to_contain": ttc,
                    "list_awaiting_page_of_200": percentiles_ms(
                        await list_latency(env.client, settings)
                    ),
                }
            )
            if open_costs is not None:
                # What one waiting incident costs to open, and what the goal's rate would
                # need at that cost (more than the machine's cores: not reachable here).
                rows[-1]["open_costs_per_incident"] = open_costs
                rows[-1]["cores_needed_for_goal_rate"] = cores_needed(
                    open_costs["cpu_ms_per_unit_total"], GOAL_OPEN_PER_S
                )
            print(f"# {json.dumps(rows[-1])}", file=sys.stderr)  # survives a later failure
        print(f"# {approvals} approvals to random waiting incidents", file=sys.stderr)
        round_trips = percentiles_ms(
            await approval_round_trips(env.client, settings, waiting, approvals)
        )
        base = rows[0]["time_to_contain"]["p50_ms"]
        for row in rows:
            row["time_to_contain_vs_baseline"] = round(row["time_to_contain"]["p50_ms"] / base, 2)
        emit(
            {
                "bench": "scale",
                "machine": machine(),
                "levels": rows,
                "approval_round_trip_at_max": round_trips,
                "worker_rss_mib_at_max": rows[-1]["worker_rss_mib"],
                "target_rss_mib": 1024,
            }
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        await lab.stop()
        await substation.stop()
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", default="0,10,1000,10000", help="comma-separated counts")
    parser.add_argument("--contain-samples", type=int, default=30)
    parser.add_argument("--approvals", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(
        main([int(x) for x in args.levels.split(",")], args.contain_samples, args.approvals)
    )
