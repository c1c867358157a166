"""Storm: N findings about M entities posted by concurrent clients to a real `bulkhead api`
process (with a real `bulkhead worker` process and the dev server).

Prints accepted findings/s, acknowledgement latency, incidents created and findings lost
(acknowledged with 202 but not in any incident). Baseline in the same run: the same
number of bare signal-with-start calls straight to Temporal, without HTTP or Bulkhead.
    .venv/bin/python bench/storm.py [--findings 10000] [--entities 100] [--clients 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, free_port, machine, percentiles_ms, spawn

from orchestrator import logs
from orchestrator.config import new_webhook_secret
from orchestrator.ingest.signatures import sign
from orchestrator.lab.traffic import TrafficLab
from orchestrator.temporal.client import temporal_binary
from orchestrator.temporal.incidents import IncidentClient
from workflows.visibility import KEYS as VISIBILITY_KEYS

BULKHEAD = str(Path(sys.executable).parent / "bulkhead")
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
    port: int, secret: str, bodies: list[bytes], clients: int
) -> tuple[list[float], list[dict[str, Any]], int]:
    """Keep-alive HTTP/1.1 over raw sockets with pre-signed requests: a load generator
    that costs little CPU, so the numbers describe Bulkhead rather than the client."""
    now = int(time.time())
    requests = []
    for index, body in enumerate(bodies):
        headers = sign(body, secret, msg_id=f"m-{index}", timestamp=now)
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


async def wait_ready(api: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(f"{api}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("bulkhead api never became ready")


async def main(n: int, entities: int, clients: int) -> None:
    logs.configure("warning")
    env = await WorkflowEnvironment.start_local(
        search_attributes=VISIBILITY_KEYS,
        dev_server_existing_path=str(temporal_binary()),
        data_converter=pydantic_data_converter,
    )
    lab = TrafficLab(port=free_port())
    await lab.start()
    state = Path(tempfile.mkdtemp(prefix="bulkhead-storm-"))
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    secret = new_webhook_secret()
    environ = {
        **os.environ,
        "BULKHEAD_TASK_QUEUE": f"storm-{uuid.uuid4().hex[:6]}",
        "BULKHEAD_STATE_DIR": str(state),
        "BULKHEAD_LAB_MODBUS_PORT": str(lab.port),
        "BULKHEAD_WEBHOOK_SECRET": secret,
        "BULKHEAD_API_PORT": str(api_port),
        "BULKHEAD_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "BULKHEAD_LOG_LEVEL": "warning",
    }
    worker = spawn([BULKHEAD, "worker"], environ)
    server = spawn([BULKHEAD, "api"], environ)
    try:
        await wait_ready(api)
        run = uuid.uuid4().hex[:6]
        names = [f"storm-{run}-entity-{i}" for i in range(entities)]
        bodies = [payload(i, names[i % entities], run) for i in range(n)]
        print(
            f"# posting {n} findings about {entities} entities with {clients} clients",
            file=sys.stderr,
        )
        started = time.perf_counter()
        latencies, accepted, failures = await post_all(api_port, secret, bodies, clients)
        elapsed = time.perf_counter() - started
        incidents = sorted({a["incident_id"] for a in accepted})
        print("# checking every acknowledged finding landed in an incident", file=sys.stderr)
        landed = 0
        reader = IncidentClient(env.client)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # No deadline per query: under the storm a worker may answer late, not never.
            views = [await reader.state(i, rpc_timeout=None) for i in incidents]
            landed = sum(v.findings_received for v in views)
            if landed >= len(accepted):
                break
            await asyncio.sleep(1)
        bare_rate = await bare_signal_with_start(env.client, min(n, 5000), entities, clients)
        emit(
            {
                "bench": "storm",
                "machine": machine(),
                "findings": n,
                "entities": entities,
                "clients": clients,
                "accepted": len(accepted),
                "rejected_after_retries": failures,
                "accepted_per_s": round(len(accepted) / elapsed, 1),
                "ack_latency": percentiles_ms(latencies),
                "incidents_created": len(incidents),
                "findings_in_incidents": landed,
                "findings_lost": len(accepted) - landed,
                "baseline_bare_signal_with_start_per_s": round(bare_rate, 1),
            }
        )
    finally:
        for process in (server, worker):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        await lab.stop()
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.findings, args.entities, args.clients))
