"""Storm: N findings about M entities posted by concurrent clients to a real Bulkhead.

Three storms, each against the bare baseline on the same Temporal server in the same run
(signal-with-start of a workflow nobody runs, same shape, no HTTP, no Bulkhead), measured
just before and just after the storm; the ratio is to the mean of the two:
- `separate`: 100 entities, a `bulkhead api` and a `bulkhead worker` process beside a dev
  server with in-memory SQLite (the shape measured since session 1);
- `concentrated`: the same against 5 entities, as a scanner or a worm produces;
- `up`: 100 entities against `bulkhead up` itself (API and worker in one process, its own
  dev server on file-backed SQLite, the lab), as a user runs it.
Each prints accepted findings/s, acknowledgement latency, findings lost (acknowledged with
202 but in no incident) and how many findings each signal to Temporal carried.
    .venv/bin/python bench/storm.py [--findings 10000] [--clients 64] [--only separate,up]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dev_server, emit, free_port, machine, percentiles_ms, spawn, wait_ready
from costs import Costs, cores_needed, named, temporal_server_pid

from orchestrator import logs
from orchestrator.config import new_webhook_secret
from orchestrator.ingest.signatures import sign
from orchestrator.lab.traffic import TrafficLab
from orchestrator.temporal.errors import NotFound
from orchestrator.temporal.incidents import IncidentClient

BULKHEAD = str(Path(sys.executable).parent / "bulkhead")
# Issue #18's goals: findings/s as a multiple of bare signal-with-start in the same run.
GOALS = {"separate": 0.8, "up": 0.8, "concentrated": 1.5}
EXAMPLE = (
    Path(__file__).resolve().parent.parent / "examples/findings/traffic-controller-compromise.json"
)


def payload(index: int, entity: str, run: str) -> bytes:
    finding = json.loads(EXAMPLE.read_text())
    finding["finding_info"] = {"uid": f"storm-{run}-{index}", "title": "storm"}
    finding["resources"] = [{"uid": entity}]
    finding["severity_id"] = 3  # medium: recorded and coalesced, no containment step
    return json.dumps(finding).encode()


def request_bytes(port: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        "POST /v1/webhooks/generic HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def post_all(
    port: int, secret: str, bodies: list[bytes], clients: int, run: str
) -> tuple[list[float], list[dict[str, Any]], int]:
    """Keep-alive HTTP/1.1 over raw sockets with pre-signed requests: a load generator
    that costs little CPU, so the numbers describe Bulkhead rather than the client."""
    now = int(time.time())
    requests = []
    for index, body in enumerate(bodies):
        headers = sign(body, secret, msg_id=f"m-{run}-{index}", timestamp=now)
        headers["content-type"] = "application/json"
        requests.append(request_bytes(port, body, headers))
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    accepted: list[dict[str, Any]] = []
    failures = 0

    async def client_loop() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not queue.empty():
                request = queue.get_nowait()
                for _attempt in range(5):  # a 503 asks the sender to retry: SIEMs do
                    started = time.perf_counter()
                    writer.write(request)
                    status, body = await read_response(reader)
                    if status == 202:
                        latencies.append(time.perf_counter() - started)
                        accepted.extend(json.loads(body)["findings"])
                        break
                    await asyncio.sleep(0.5)
                else:
                    failures += 1
        finally:
            writer.close()

    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return latencies, accepted, failures


async def bare_signal_with_start(client: Client, n: int, entities: int, clients: int) -> float:
    """Signal-with-start of a workflow type nobody runs: Temporal's own ingest ceiling."""
    queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
    semaphore = asyncio.Semaphore(clients)

    async def one(index: int) -> None:
        async with semaphore:
            await client.start_workflow(
                "BareStorm",
                id=f"bare-{queue}-{index % entities}",
                task_queue=queue,
                start_signal="finding",
                start_signal_args=[{"i": index}],
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - started)


@dataclass
class Target:
    """A running Bulkhead: its API port and webhook secret, a client of its Temporal, and
    the processes whose CPU a storm is charged with (bench/costs.py)."""

    client: Client
    api_port: int
    secret: str
    processes: dict[str, int]
    metrics_url: str | None = None

    def costs(self) -> Costs:
        """A window over the target's processes and this one (the load generator)."""
        return Costs({**self.processes, "load_generator": os.getpid()}, self.metrics_url)


def base_environment(state: Path, secret: str, api_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "BULKHEAD_TASK_QUEUE": f"storm-{uuid.uuid4().hex[:6]}",
        "BULKHEAD_STATE_DIR": str(state),
        "BULKHEAD_WEBHOOK_SECRET": secret,
        "BULKHEAD_API_PORT": str(api_port),
        "BULKHEAD_LOG_LEVEL": "warning",
    }


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@asynccontextmanager
async def separate() -> AsyncIterator[Target]:
    """A dev server (in-memory SQLite), the traffic lab, `bulkhead api` and `bulkhead worker`."""
    metrics_port = free_port()
    env = await dev_server(metrics_port)
    lab = TrafficLab(port=free_port())
    await lab.start()
    api_port, secret = free_port(), new_webhook_secret()
    environ = base_environment(Path(tempfile.mkdtemp(prefix="bulkhead-storm-")), secret, api_port)
    environ["BULKHEAD_LAB_MODBUS_PORT"] = str(lab.port)
    environ["BULKHEAD_TEMPORAL_ADDRESS"] = env.client.service_client.config.target_host
    processes = [spawn([BULKHEAD, "worker"], environ), spawn([BULKHEAD, "api"], environ)]
    try:
        await wait_ready(f"http://127.0.0.1:{api_port}")
        worker, api = (p.pid for p in processes)
        server = named([("temporal_server", temporal_server_pid(os.getpid(), metrics_port))])
        yield Target(
            env.client,
            api_port,
            secret,
            {**server, "api": api, "worker": worker},
            f"http://127.0.0.1:{metrics_port}/metrics",
        )
    finally:
        stop(processes)
        await lab.stop()
        await env.shutdown()


@asynccontextmanager
async def up() -> AsyncIterator[Target]:
    """`bulkhead up` on private ports and a private state dir, as a user runs it."""
    api_port, temporal_port, secret = free_port(), free_port(), new_webhook_secret()
    state = Path(tempfile.mkdtemp(prefix="bulkhead-storm-up-"))
    environ = base_environment(state, secret, api_port)
    for server in ("MODBUS", "LDAP", "SCIM", "VAULT", "OPCUA", "HTTP"):
        environ[f"BULKHEAD_LAB_{server}_PORT"] = str(free_port())
    command = [BULKHEAD, "up", "--state-dir", str(state), "--api-port", str(api_port)]
    process = spawn([*command, "--temporal-port", str(temporal_port)], environ)
    try:
        await wait_ready(f"http://127.0.0.1:{api_port}")
        client = await Client.connect(
            f"127.0.0.1:{temporal_port}", data_converter=pydantic_data_converter
        )
        # `bulkhead up` starts its own dev server (no metrics port asked: CPU only).
        dev = named([("temporal_server", temporal_server_pid(process.pid))])
        yield Target(client, api_port, secret, {**dev, "bulkhead_up": process.pid})
    finally:
        stop([process])


async def signals_so_far(api_port: int) -> tuple[float, float]:
    """Findings carried and signal-with-start calls made so far, from the API's metrics."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{api_port}/metrics")).text
    found = dict(re.findall(r"^bulkhead_findings_per_signal_(sum|count) (\S+)$", text, re.M))
    return float(found.get("sum", 0)), float(found.get("count", 0))


async def received(reader: IncidentClient, incident_id: str) -> int:
    try:
        # No deadline per query: under the storm a worker may answer late, not never.
        return (await reader.state(incident_id, rpc_timeout=None)).findings_received
    except NotFound:  # seen once mid continue-as-new on a loaded server: asked again
        return 0


async def count_landed(client: Client, incidents: list[str], expected: int) -> int:
    """Findings found back in the incidents, waiting up to 2 min for the worker to catch up."""
    reader = IncidentClient(client)
    landed = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        landed = sum([await received(reader, i) for i in incidents])
        if landed >= expected:
            break
        await asyncio.sleep(1)
    return landed


async def storm(target: Target, name: str, n: int, entities: int, clients: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    names = [f"storm-{run}-entity-{i}" for i in range(entities)]
    bodies = [payload(i, names[i % entities], run) for i in range(n)]
    print(f"# {name}: {n} findings about {entities} entities, {clients} clients", file=sys.stderr)
    # The bare baseline runs before and after the storm, on the same server: the machine's
    # speed drifts by a quarter within a minute here, and the mean of the two brackets it.
    bare_costs = target.costs()
    await bare_costs.start()
    bare_n = min(n, 5000)
    bare_before = await bare_signal_with_start(target.client, bare_n, entities, clients)
    bare_cost = await bare_costs.stop(bare_n)
    carried_before, signals_before = await signals_so_far(target.api_port)
    print(f"# {name}: posting (attach py-spy now)", file=sys.stderr)
    storm_costs = target.costs()
    await storm_costs.start()
    started = time.perf_counter()
    latencies, accepted, failures = await post_all(
        target.api_port, target.secret, bodies, clients, run
    )
    elapsed = time.perf_counter() - started
    print(f"# {name}: checking every acknowledged finding landed", file=sys.stderr)
    incidents = sorted({a["incident_id"] for a in accepted})
    landed = await count_landed(target.client, incidents, len(accepted))
    # Charged until every finding is in its workflow: the worker's share comes late.
    storm_cost = await storm_costs.stop(len(accepted))
    carried, signals = await signals_so_far(target.api_port)
    bare_after = await bare_signal_with_start(target.client, bare_n, entities, clients)
    bare_rate = (bare_before + bare_after) / 2
    rate = len(accepted) / elapsed
    return {
        "storm": name,
        "findings": n,
        "entities": entities,
        "clients": clients,
        "accepted": len(accepted),
        "rejected_after_retries": failures,
        "accepted_per_s": round(rate, 1),
        "ack_latency": percentiles_ms(latencies),
        "incidents_created": len(incidents),
        "findings_in_incidents": landed,
        "findings_lost": len(accepted) - landed,
        "signals_to_temporal": int(signals - signals_before),
        "findings_per_signal": round((carried - carried_before) / (signals - signals_before), 2)
        if signals > signals_before
        else None,
        "baseline_bare_signal_with_start_per_s": round(bare_rate, 1),
        "baseline_before_and_after_per_s": [round(bare_before, 1), round(bare_after, 1)],
        "ratio_to_bare": round(rate / bare_rate, 2),
        "costs": {
            "per_finding": storm_cost,
            "bare_per_signal_with_start": bare_cost,
            # CPU a finding costs today, times the goal's rate: more than the machine's
            # cores means the goal needs cheaper findings, not better scheduling.
            "cores_needed_at_goal": cores_needed(
                storm_cost["cpu_ms_per_unit_total"], GOALS[name] * bare_rate
            ),
            "cores": os.cpu_count(),
        },
    }


async def main(n: int, clients: int, only: set[str]) -> None:
    logs.configure("warning")
    runs: list[dict[str, Any]] = []
    if only & {"separate", "concentrated"}:
        async with separate() as target:
            if "separate" in only:
                runs.append(await storm(target, "separate", n, 100, clients))
            if "concentrated" in only:
                runs.append(await storm(target, "concentrated", n, 5, clients))
    if "up" in only:
        async with up() as target:
            runs.append(await storm(target, "up", n, 100, clients))
    goals = {"ratio_to_bare": GOALS, "ack_p99_ms": 250}
    emit({"bench": "storm", "machine": machine(), "goals": goals, "runs": runs})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--only", default="separate,concentrated,up")
    args = parser.parse_args()
    asyncio.run(main(args.findings, args.clients, set(args.only.split(","))))
