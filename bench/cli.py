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
from pathlib import Path
from typing import Any

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, free_port, machine, percentiles_ms, spawn

from orchestrator import logs
from orchestrator.config import Settings, new_webhook_secret
from orchestrator.lab.traffic import TrafficLab
from orchestrator.responders.operator import ensure_operator, operator_token
from orchestrator.temporal.client import temporal_binary
from workflows.visibility import KEYS as VISIBILITY_KEYS

GOAL_S = 0.5
BULKHEAD = str(Path(sys.executable).parent / "bulkhead")
EXAMPLE = (
    Path(__file__).resolve().parent.parent / "examples/findings/traffic-controller-compromise.json"
)
READY_TIMEOUT_S = 60.0


def finding_files(directory: Path, count: int) -> list[Path]:
    """Copies of the example, each with its own finding uid, so the API accepts every one
    as new instead of answering a duplicate."""
    run = uuid.uuid4().hex[:6]
    paths = []
    for index in range(count):
        finding = json.loads(EXAMPLE.read_text())
        finding["finding_info"]["uid"] = f"bench-cli-{run}-{index}"
        path = directory / f"finding-{index}.json"
        path.write_text(json.dumps(finding))
        paths.append(path)
    return paths


def timed(command: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to exit; a failed command stops the bench (it measured nothing)."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, check=False)  # noqa: S603
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[1:3]} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed


def commands(api: str, findings: list[Path]) -> dict[str, list[list[str]]]:
    """Per name, the command line of each run (send takes a fresh finding each time)."""
    runs = len(findings)
    return {
        "send": [[BULKHEAD, "send", "generic", str(f), "--api-url", api] for f in findings],
        "incidents_ls": [[BULKHEAD, "incidents", "ls", "--api-url", api]] * runs,
        "python_pass": [[sys.executable, "-c", "pass"]] * runs,
        "python_import_httpx": [[sys.executable, "-c", "import httpx"]] * runs,
    }


def time_all(lines: dict[str, list[list[str]]], env: dict[str, str]) -> dict[str, list[float]]:
    """Round-robin: run i of every command before run i+1 of any."""
    samples: dict[str, list[float]] = {name: [] for name in lines}
    for index in range(len(next(iter(lines.values())))):
        for name, runs in lines.items():
            samples[name].append(timed(runs[index], env))
    return samples


async def wait_listening(api: str) -> None:
    async with httpx.AsyncClient() as http:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{api}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("bulkhead api never became ready")


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
    measured = ("send", "incidents_ls")
    return {
        "bench": "cli",
        "machine": machine(),
        "runs": runs,
        "goal_s": GOAL_S,
        "commands": {name: stats[name] for name in measured},
        "within_goal_p90": {name: stats[name]["p90_ms"] <= GOAL_S * 1000 for name in measured},
        "baseline": {name: stats[name] for name in stats if name not in measured},
    }


async def main(runs: int) -> None:
    logs.configure("warning")
    env = await WorkflowEnvironment.start_local(
        search_attributes=VISIBILITY_KEYS,
        dev_server_existing_path=str(temporal_binary()),
        data_converter=pydantic_data_converter,
    )
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
        findings = finding_files(state, runs + 1)
        print(f"# warming up: {api}, worker, dev server at {temporal}", file=sys.stderr)
        await wait_listening(api)
        await asyncio.to_thread(timed, commands(api, findings[:1])["send"][0], environ)
        await wait_published(api, token)
        print(f"# timing {runs} runs of each command", file=sys.stderr)
        # In a thread: the lab's Modbus server answers the worker from this event loop.
        samples = await asyncio.to_thread(time_all, commands(api, findings[1:]), environ)
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
