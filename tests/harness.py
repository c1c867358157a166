"""Helpers to run a worker and the API in-process against the test Temporal server."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from conftest import free_port
from fastapi import FastAPI
from grant_signing import TEST_APPROVAL_KEY
from pymodbus.client import AsyncModbusTcpClient
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from contracts.incident import IncidentView, StepState
from contracts.names import STATE_QUERY, IncidentUpdate
from orchestrator.activities import ContainmentActivities
from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.config import Settings, new_webhook_secret
from orchestrator.ingest.signatures import sign
from orchestrator.lab.traffic import MODE_NORMAL, MODE_REGISTER, TrafficLab
from orchestrator.policy.base import PolicyEngine
from orchestrator.responders.principals import PrincipalStore
from orchestrator.runtime import api_server
from orchestrator.temporal.incidents import IncidentClient
from orchestrator.wiring.worker import build_activities, build_worker

EXAMPLE = (
    Path(__file__).resolve().parent.parent / "examples/findings/traffic-controller-compromise.json"
)


def example_finding(**changes: Any) -> dict[str, Any]:
    finding: dict[str, Any] = json.loads(EXAMPLE.read_text())
    finding.update(changes)
    return finding


def fresh_ip() -> str:
    """An address of its own for a test's incident (incidents are keyed on it and outlive
    the test on the shared dev server): random in 198.19.128.0/17, which no fixed test
    data uses (the 1,000-alert batch takes 198.19.0.0/22)."""
    return f"198.19.{128 + secrets.randbelow(128)}.{1 + secrets.randbelow(254)}"


def make_settings(lab_port: int, **overrides: Any) -> Settings:
    overrides.setdefault("state_dir", Path(tempfile.mkdtemp(prefix="bulkhead-test-")))
    # These settings drive the lab's servers (the traffic lab at lab_port, at least).
    overrides.setdefault("lab", True)
    # The key the API signs responder grants with; the tests' client signs with it too.
    overrides.setdefault("approval_key", TEST_APPROVAL_KEY)
    # In-process workers run the workflows in temporalio's sandbox: production turns it off
    # for speed (orchestrator/config.py), so the suite is where it catches a clock read.
    overrides.setdefault("workflow_sandbox", True)
    return Settings(
        task_queue=f"test-{uuid.uuid4().hex[:12]}",
        lab_modbus_port=lab_port,
        webhook_secret=new_webhook_secret(),
        **overrides,
    )


@asynccontextmanager
async def running_worker(
    client: Client,
    settings: Settings,
    activities: ContainmentActivities | None = None,
    *,
    replay_every_task: bool = False,
) -> AsyncIterator[Worker]:
    worker = build_worker(
        client,
        settings,
        activities or build_activities(settings),
        max_cached_workflows=0 if replay_every_task else 1000,
    )
    await worker.__aenter__()
    try:
        yield worker
    finally:
        await stop_within(worker, WORKER_STOP_S)


# Temporal's core can wait for ever in a worker's finalize_shutdown after it evicted a run
# whose local activity it still tracked (the lost cancel of sdk-python#1837): the CI runs
# of sessions 15 and 17 hung there, in test_replay_every_task and the 1,000-finding storm,
# after each test had its answer. Production bounds its stop the same way (runtime.py).
WORKER_STOP_S = 45.0


async def stop_within(worker: Worker, seconds: float) -> None:
    """Shut the worker down as `async with` would (a fatal worker error still raises),
    but give up waiting after `seconds`: its polls have stopped by then, so the hung
    worker takes no more tasks, and the test's verdict stands. Says so on stderr."""
    try:
        await asyncio.wait_for(worker.__aexit__(None, None, None), seconds)
    except TimeoutError:
        print(
            f"warning: a test worker did not finish shutting down in {seconds:g} s "
            "(Temporal core, sdk-python#1837); left behind",
            file=sys.stderr,
            flush=True,
        )


def first_step_is(view: IncidentView, state: StepState) -> bool:
    return bool(view.steps) and view.steps[0].state is state


_READERS: dict[Path, str] = {}


def reader_headers(settings: Settings) -> dict[str, str]:
    """Authorization for reads: a viewer principal in the settings' store (made once)."""
    path = settings.principals_path
    if path not in _READERS:
        _READERS[path] = PrincipalStore(path).add("test-reader", ["viewer"])
    return {"Authorization": f"Bearer {_READERS[path]}"}


def api_client(
    client: Client,
    settings: Settings,
    activities: ContainmentActivities | None,
    engine: PolicyEngine | None = None,
    *,
    anonymous: bool = False,
) -> httpx.AsyncClient:
    """The app in-process; `engine` (default: the activities' one) authorizes actions.

    Requests carry a viewer's token unless `anonymous` (a request's own Authorization
    header wins), so reads work and writes still need a principal that may act."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    engine = engine or (activities.engine if activities else None)
    context = build_context(settings, client, engine, secret)
    transport = httpx.ASGITransport(app=create_app(context), client=("127.0.0.1", 40000))
    headers = {} if anonymous else reader_headers(settings)
    return httpx.AsyncClient(transport=transport, base_url="http://bulkhead.test", headers=headers)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """The app under a real uvicorn on a free loopback port, in this event loop."""
    port = free_port()
    server = api_server(app, "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = server.force_exit = True
        await asyncio.wait_for(task, 10)


def signed(body: bytes, secret: str, msg_id: str | None = None) -> dict[str, str]:
    headers = sign(
        body, secret, msg_id=msg_id or f"msg_{uuid.uuid4().hex}", timestamp=int(time.time())
    )
    headers["content-type"] = "application/json"
    return headers


async def wait_for(
    client: Client,
    incident_id: str,
    predicate: Callable[[IncidentView], bool],
    timeout_s: float = 20.0,
) -> IncidentView:
    """Poll the workflow's state query until the predicate holds (or fail with the last view)."""
    incidents = IncidentClient(client)
    deadline = time.monotonic() + timeout_s
    view: IncidentView | None = None
    while time.monotonic() < deadline:
        try:
            view = await incidents.state(incident_id)
        except Exception:  # noqa: BLE001 - not started yet; keep polling until the deadline
            view = None
        if view is not None and predicate(view):
            return view
        await asyncio.sleep(0.1)
    shown = view.model_dump_json(indent=1) if view else "never started"
    raise AssertionError(f"incident {incident_id} did not reach the expected state:\n{shown}")


async def release_and_end(
    client: Client, incident_id: str, request: Any, timeout_s: float = 30.0
) -> IncidentView:
    """Release the incident and wait for the run that released it to end (its audit is
    flushed then); its final state. A released incident rests in a new run instead of
    completing, so `handle.result()` would wait for the entity's next incident."""
    latest = client.get_workflow_handle(incident_id)
    run_id = (await latest.describe()).run_id
    handle = client.get_workflow_handle(incident_id, run_id=run_id, result_type=IncidentView)
    # By name on this run (the typed client updates the entity's latest run).
    await handle.execute_update(IncidentUpdate.RELEASE, request, result_type=IncidentView)
    deadline = time.monotonic() + timeout_s
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert time.monotonic() < deadline, f"the release run of {incident_id} did not end"
        await asyncio.sleep(0.1)
    view: IncidentView = await handle.query(STATE_QUERY, result_type=IncidentView)
    return view


def start_script_worker(
    address: str, script: Path, log: Path, *args: str
) -> subprocess.Popen[bytes]:
    """A test's worker script in a process of its own (a crash test kills it), given the
    dev server's address and `args`; the repository and tests/ on its PYTHONPATH, its
    output in `log` (what a failed start said, for the test's message)."""
    root = Path(__file__).resolve().parent.parent
    paths = [str(root), str(root / "tests"), os.environ.get("PYTHONPATH", "")]
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, str(script), address, *args],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def kill_when(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], what: str, timeout_s: float = 30
) -> None:
    """SIGKILL `process` the moment `ready()` holds (polled every 20 ms), and reap it;
    fail saying `what` never happened if it does not within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    try:
        while not ready():
            assert time.monotonic() < deadline, f"{what} never happened"
            await asyncio.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)


def stop_workers(*processes: subprocess.Popen[bytes] | None) -> None:
    """A crash test's worker processes, ended (SIGTERM) where they still run."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:  # a shutdown that hung (see WORKER_STOP_S)
                process.kill()
                process.wait()


async def revert_by_hand(lab: TrafficLab, device_id: int = 1) -> None:
    """Put a lab controller back to normal mode as any Modbus client can, unseen by
    Bulkhead: a field technician's tool, or a reboot into the normal program (drift)."""
    client = AsyncModbusTcpClient(lab.host, port=lab.port, timeout=2, retries=0)
    assert await client.connect(), "the lab controller does not answer"
    try:
        response = await client.write_register(MODE_REGISTER, MODE_NORMAL, device_id=device_id)
        assert not response.isError(), response
    finally:
        client.close()
