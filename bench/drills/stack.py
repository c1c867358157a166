"""A Bulkhead deployment the drills can break: a file-backed dev server that can be
restarted, `bulkhead api` and `bulkhead worker` processes that can be SIGKILLed, the lab's
traffic controllers (which count every write) and a policy copy with short leases."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from contracts.incident import IncidentView, Principal, ReleaseRequest
from orchestrator.config import DEFAULT_POLICY_DIR, Settings, new_webhook_secret
from orchestrator.lab.traffic import TrafficLab
from orchestrator.responders.grants import approval_key, granted
from orchestrator.temporal.devserver import DevServer
from orchestrator.temporal.incidents import IncidentClient

BULKHEAD = str(Path(sys.executable).parent / "bulkhead")
EXAMPLE = (
    Path(__file__).resolve().parents[2] / "examples/findings/traffic-controller-compromise.json"
)
DUTY = Principal(name="drill-duty-officer", roles=["duty-officer"])
DRILL_LEASE_S = 6  # short, so a drill can watch a lease expire after the crash


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def short_lease_policies(root: Path) -> Path:
    """The shipped policies with every lease cut to DRILL_LEASE_S seconds."""
    target = root / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, target)
    guardrails_path = target / "data" / "guardrails.json"
    guardrails = json.loads(guardrails_path.read_text())
    guardrails["lease_s"] = dict.fromkeys(guardrails["lease_s"], DRILL_LEASE_S)
    guardrails_path.write_text(json.dumps(guardrails))
    return target


def finding(asset: str, uid: str, severity_id: int = 4) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text())
    document["finding_info"] = {"uid": uid, "title": "drill"}
    document["resources"] = [{"uid": asset}]
    document["severity_id"] = severity_id
    return document


@dataclass
class Stack:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bulkhead-drill-")))
    secret: str = field(default_factory=new_webhook_secret)
    queue: str = field(default_factory=lambda: f"drill-{uuid.uuid4().hex[:6]}")
    # Slow writes let the kill drill land a SIGKILL in the middle of one.
    write_delay_s: float = 0.0
    lab: TrafficLab = field(default_factory=lambda: TrafficLab(port=free_port()))
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    apis: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    client: Client | None = None
    short_leases: bool = False

    def __post_init__(self) -> None:
        self.lab.write_delay_s = self.write_delay_s
        self.server = DevServer(self.root / "temporal", port=free_port(), ui_port=free_port())
        self.policies = short_lease_policies(self.root) if self.short_leases else DEFAULT_POLICY_DIR

    async def start(self) -> None:
        await self.server.start()
        await self.lab.start()
        self.client = await self._connect()

    async def _connect(self, attempts: int = 60) -> Client:
        """The dev server's port opens before its frontend is healthy ("Frontend is not
        healthy yet"): a drill that connected at once failed on a busy machine."""
        for _ in range(attempts - 1):
            try:
                return await Client.connect(
                    self.server.address, data_converter=pydantic_data_converter
                )
            except RuntimeError:
                await asyncio.sleep(0.5)
        return await Client.connect(self.server.address, data_converter=pydantic_data_converter)

    async def stop(self) -> None:
        self.stop_processes([*self.workers, *self.apis.values()])
        await self.lab.stop()
        await self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()

    def verify_audit(self) -> tuple[bool, str]:
        """`bulkhead audit verify` on the trail every worker wrote to (the shared state
        dir), once the workers stopped: whether it is intact, and its report."""
        self.stop_processes(self.workers)
        state = self.root / "state"
        # Our own console script with arguments we built: no untrusted input.
        done = subprocess.run(  # noqa: S603
            [BULKHEAD, "audit", "verify", str(state / "audit.jsonl"), "--state-dir", str(state)],
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return done.returncode == 0, done.stdout + done.stderr

    def environ(self, api_port: int | None = None) -> dict[str, str]:
        values = {
            **os.environ,
            "BULKHEAD_TASK_QUEUE": self.queue,
            "BULKHEAD_STATE_DIR": str(self.root / "state"),
            "BULKHEAD_POLICY_DIR": str(self.policies),
            "BULKHEAD_LAB_MODBUS_PORT": str(self.lab.port),
            "BULKHEAD_WEBHOOK_SECRET": self.secret,
            "BULKHEAD_TEMPORAL_ADDRESS": self.server.address,
            "BULKHEAD_LOG_LEVEL": "warning",
        }
        if api_port is not None:
            values["BULKHEAD_API_PORT"] = str(api_port)
        return values

    def _spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        # Our own console script with arguments we built: no untrusted input.
        return subprocess.Popen(  # noqa: S603
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = self._spawn([BULKHEAD, "worker"], self.environ())
        self.workers.append(worker)
        return worker

    async def start_api(self, port: int | None = None) -> int:
        port = port or free_port()
        self.apis[port] = self._spawn([BULKHEAD, "api"], self.environ(port))
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        return port
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"bulkhead api on {port} never answered")

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    async def view(self, incident_id: str) -> IncidentView | None:
        assert self.client is not None
        try:
            return await IncidentClient(self.client).state(incident_id)
        except Exception:  # noqa: BLE001 - not started, or the server is restarting
            return None

    async def wait_view(
        self, incident_id: str, predicate: Any, timeout_s: float = 60.0
    ) -> IncidentView:
        deadline = time.monotonic() + timeout_s
        view = None
        while time.monotonic() < deadline:
            view = await self.view(incident_id)
            if view is not None and predicate(view):
                return view
            await asyncio.sleep(0.05)
        steps = [(s.id, s.state.value, s.error) for s in view.steps] if view else "never started"
        raise TimeoutError(f"{incident_id} did not reach the expected state: {steps}")

    async def release(self, incident_id: str) -> IncidentView:
        assert self.client is not None
        # The drill acts as the API would, with the approval key the workers share.
        key = approval_key(Settings(state_dir=self.root / "state"))
        request = granted(
            key, ReleaseRequest(principal=DUTY, reason="drill"), "release", incident_id
        )
        return await IncidentClient(self.client).release(incident_id, request)
