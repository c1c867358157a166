"""/healthz latency while 24 clients post 1 MB policy dry runs, against the idle API.

The probe that filed issue #14 saw /healthz take 13 s while 24 concurrent 1 MB
`POST /v1/policy/evaluate` requests ran on the event loop. This bench runs `bulkhead api`
as its own process (Temporal is not needed: the client is lazy and neither route uses
it), measures /healthz idle as the baseline, then again while 24 clients keep posting
1 MB dry runs, and prints one JSON object. Usage:
    .venv/bin/python bench/front_door.py [--seconds 20] [--clients 24]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, free_port, machine, percentiles_ms, spawn

from orchestrator.config import REPO_ROOT, new_webhook_secret
from orchestrator.responders.principals import PrincipalStore

EXAMPLE = REPO_ROOT / "examples" / "findings" / "traffic-controller-compromise.json"
BULKHEAD = str(Path(sys.executable).with_name("bulkhead"))


def dry_run_body(size: int = 1_000_000) -> bytes:
    """About `size` bytes of findings about one asset, each with a long description."""
    finding = json.loads(EXAMPLE.read_text())
    findings = []
    while len(json.dumps(findings)) < size - 6000:
        one = json.loads(json.dumps(finding))
        one["finding_info"]["uid"] = f"det-{len(findings)}"
        one["finding_info"]["desc"] = "x" * 5000
        findings.append(one)
    return json.dumps({"findings": findings}).encode()


async def sample_health(http: httpx.AsyncClient, seconds: float) -> list[float]:
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        response = await http.get("/healthz")
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200
        await asyncio.sleep(0.02)
    return samples


async def load(
    http: httpx.AsyncClient, body: bytes, headers: dict[str, str], stop: asyncio.Event
) -> dict[int, int]:
    statuses: dict[int, int] = {}
    while not stop.is_set():
        response = await http.post("/v1/policy/evaluate", content=body, headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 503:
            await asyncio.sleep(0.05)  # told to retry: as a polite client would
    return statuses


async def measure(url: str, token: str, seconds: float, clients: int) -> dict[str, object]:
    body = dry_run_body()
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        idle = await sample_health(http, seconds / 2)
        stop = asyncio.Event()
        loaders = [asyncio.create_task(load(http, body, headers, stop)) for _ in range(clients)]
        await asyncio.sleep(1.0)  # every client has a request in flight
        loaded = await sample_health(http, seconds)
        stop.set()
        outcomes: dict[int, int] = {}
        for result in await asyncio.gather(*loaders):
            for status, count in result.items():
                outcomes[status] = outcomes.get(status, 0) + count
    idle_p = percentiles_ms(idle)
    loaded_p = percentiles_ms(loaded)
    return {
        "bench": "front_door",
        "machine": machine(),
        "body_bytes": len(body),
        "clients": clients,
        "healthz_idle": idle_p,
        "healthz_under_dry_runs": loaded_p,
        "p99_ratio": round(loaded_p["p99_ms"] / max(idle_p["p99_ms"], 0.01), 2),
        "dry_run_answers": {str(k): v for k, v in sorted(outcomes.items())},
        "target": "healthz p99 under load < 100 ms",
        "met": loaded_p["p99_ms"] < 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=24)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bulkhead-bench-front-"))
    token = PrincipalStore(state / "principals.json").add("bench", ["viewer"])
    port = free_port()
    env = {
        **os.environ,
        "BULKHEAD_STATE_DIR": str(state),
        "BULKHEAD_API_PORT": str(port),
        "BULKHEAD_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "BULKHEAD_WEBHOOK_SECRET": new_webhook_secret(),
        "BULKHEAD_MAX_BODY_BYTES": str(2 * 1024 * 1024),
        "BULKHEAD_LOG_LEVEL": "warning",
    }
    api = spawn([BULKHEAD, "api"], env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        emit(asyncio.run(measure(url, token, args.seconds, args.clients)))
    finally:
        api.terminate()
        api.wait(timeout=30)


if __name__ == "__main__":
    main()
