"""CLI: start-to-exit time of `bulkhead send` (one finding) and `bulkhead incidents ls`
against a real `bulkhead api` and `bulkhead worker` on the dev server (issue #18: each
within 0.5 s on a 2-core machine).

Every sample is a fresh process, timed from spawn to exit, as a person or a script
would run it. Baselines in the same run, same interpreter: `python -c pass` (interpreter
start) and `python -c "import httpx"` (the HTTP client every API command needs). The
commands and baselines take turns, so a noisy neighbour slows them alike.
    .venv/bin/python bench/cli.py [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dev_server, emit, free_port, machine, percentiles_ms, spawn, wait_ready

from orchestrator import logs
from orchestrator.config import Settings, new_webhook_secret
from orchestrator.ingest.signatures import sign
from orchestrator.lab.traffic import TrafficLab
from orchestrator.responders.operator import ensure_operator, operator_token

GOAL_S = 0.5
BULKHEAD = str(Path(sys.executable).parent / "bulkhead")
EXAMPLE = (
    Path(__file__).resolve().parent.parent / "examples/findings/traffic-controller-compromise.json"
)
READY_TIMEOUT_S = 60.0
# Each command, and the name of the same request made in-process (the API's answer alone).
ANSWER_ALONE = {"send": "api_answer_send", "incidents_ls": "api_answer_ls"}


def findings(count: int, tag: str) -> list[bytes]:
    """Copies of the example, each with its own finding uid, so the API accepts every one
    as new instead of answering a duplicate."""
    template = json.loads(EXAMPLE.read_text())
    run = uuid.uuid4().hex[:6]
    bodies = []
    for index in range(count):
        template["finding_info"]["uid"] = f"bench-cli-{run}-{tag}-{index}"
        bodies.append(json.dumps(template).encode())
    return bodies


def finding_files(directory: Path, count: int) -> list[Path]:
    paths = [directory / f"finding-{index}.json" for index in range(count)]
    for path, body in zip(paths, findings(count, "cli"), strict=True):
        path.write_bytes(body)
    return paths


Run = Callable[[], None]


def command(line: list[str], env: dict[str, str]) -> Run:
    """One run of a process; a failed one stops the bench (it measured nothing)."""

    def run() -> None:
        done = subprocess.run(line, env=env, capture_output=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"{line[1:3]} exited {done.returncode}: {done.stderr.decode()}")

    return run


def request(method: str, url: str, secret: str | None = None, **kwargs: Any) -> Run:
    """The same request from this process (signed when `secret`), with a new client as
    each command makes one: what the API's answer takes without the CLI around it."""

    def run() -> None:
        headers = dict(kwargs.get("headers", {}))
        if secret is not None:  # signed when sent, as the CLI does, so never stale
            stamp = int(time.time())
            headers.update(
                sign(kwargs["content"], secret, msg_id=uuid.uuid4().hex, timestamp=stamp)
            )
        response = httpx.request(method, url, timeout=15, **{**kwargs, "headers": headers})
        response.raise_for_status()

    return run


def runs_of(api: str, files: list[Path], env: dict[str, str], token: str) -> dict[str, list[Run]]:
    """Per name, each of its runs; every send, through the CLI or not, has a new finding.
    Beside the commands: the API's answers alone and the interpreter baselines."""
    n = len(files)
    webhook = f"{api}/v1/webhooks/generic"
    secret = env["BULKHEAD_WEBHOOK_SECRET"]
    json_type = {"content-type": "application/json"}
    bearer = {"authorization": f"Bearer {token}"}
    return {
        "send": [
            command([BULKHEAD, "send", "generic", str(f), "--api-url", api], env) for f in files
        ],
        "incidents_ls": [command([BULKHEAD, "incidents", "ls", "--api-url", api], env)] * n,
        "api_answer_send": [
            request("POST", webhook, secret, content=body, headers=json_type)
            for body in findings(n, "direct")
        ],
        "api_answer_ls": [request("GET", f"{api}/v1/incidents", headers=bearer)] * n,
        "python_pass": [command([sys.executable, "-c", "pass"], env)] * n,
        "python_import_httpx": [command([sys.executable, "-c", "import httpx"], env)] * n,
    }


def time_all(runs: dict[str, list[Run]]) -> dict[str, list[float]]:
    """Round-robin: run i of every name before run i+1 of any."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for index in range(len(next(iter(runs.values())))):
        for name, each in runs.items():
            started = time.perf_counter()
            each[index]()
            samples[name].append(time.perf_counter() - started)
    return samples


async def wait_published(api: str, token: str) -> None:
    """Until the API lists the warm-up incident as published by the worker: then the API,
    Temporal and the worker are all up, and `incidents ls` measures a steady state."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {token}"}) as http:
        while time.monotonic() < deadline:
            try:
                answer = await http.get(f"{api}/v1/incidents")
                rows = answer.json().get("incidents", []) if answer.status_code == 200 else []
                if rows and all(row.get("published", True) for row in rows):
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the API never listed a published incident")


def environment(state: Path, api_port: int, lab_port: int, temporal: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("BULKHEAD_")},
        "BULKHEAD_TASK_QUEUE": f"bench-cli-{uuid.uuid4().hex[:6]}",
        "BULKHEAD_STATE_DIR": str(state),
        "BULKHEAD_LAB_MODBUS_PORT": str(lab_port),
        "BULKHEAD_WEBHOOK_SECRET": new_webhook_secret(),
        "BULKHEAD_API_PORT": str(api_port),
        "BULKHEAD_TEMPORAL_ADDRESS": temporal,
        "BULKHEAD_LOG_LEVEL": "warning",
    }


def result(samples: dict[str, list[float]], runs: int) -> dict[str, Any]:
    stats = {name: percentiles_ms(values) for name, values in samples.items()}
    measured = tuple(ANSWER_ALONE)
    return {
        "bench": "cli",
        "machine": machine(),
        "runs": runs,
        "goal_s": GOAL_S,
        "commands": {name: stats[name] for name in measured},
        "within_goal_p90": {name: stats[name]["p90_ms"] <= GOAL_S * 1000 for name in measured},
        # What the CLI adds to the API's own answer (process start, imports, settings).
        "cli_share_p50_ms": {
            name: round(stats[name]["p50_ms"] - stats[alone]["p50_ms"], 2)
            for name, alone in ANSWER_ALONE.items()
        },
        "baseline": {name: stats[name] for name in stats if name not in measured},
    }


async def main(runs: int) -> None:
    logs.configure("warning")
    env = await dev_server()
    lab = TrafficLab(port=free_port())
    await lab.start()
    state = Path(tempfile.mkdtemp(prefix="bulkhead-bench-cli-"))
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    temporal = env.client.service_client.config.target_host
    environ = environment(state, api_port, lab.port, temporal)
    # `incidents ls` reads with the local operator credential, as after `bulkhead up`.
    ensure_operator(Settings(state_dir=state))
    token = operator_token(Settings(state_dir=state)) or ""
    worker = spawn([BULKHEAD, "worker"], environ)
    server = spawn([BULKHEAD, "api"], environ)
    try:
        files = finding_files(state, runs + 1)
        print(f"# warming up: {api}, worker, dev server at {temporal}", file=sys.stderr)
        await wait_ready(api, READY_TIMEOUT_S)
        # In a thread: the lab's Modbus server answers the worker from this event loop.
        await asyncio.to_thread(time_all, runs_of(api, files[:1], environ, token))
        await wait_published(api, token)
        print(f"# timing {runs} runs of each", file=sys.stderr)
        samples = await asyncio.to_thread(time_all, runs_of(api, files[1:], environ, token))
        emit(result(samples, runs))
    finally:
        for process in (server, worker):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        await lab.stop()
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
    # The result is out and the servers are stopped. Temporal's Rust threads can still
    # abort interpreter finalization (SIGABRT, "PyGILState_Release ... must be current",
    # temporalio/sdk-python#300; it happened here once), which would fail `make bench`.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
