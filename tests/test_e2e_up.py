"""The README demo, for real: `bulkhead up`, `bulkhead send`, then read the controller."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cacao_spec import spec_problems
from conftest import free_port, free_temporal_port

from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, read_mode

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parent.parent
BULKHEAD = str(Path(sys.executable).parent / "bulkhead")
EXAMPLE = REPO / "examples/findings/traffic-controller-compromise.json"


class Up:
    """`bulkhead up` as a user runs it, on private ports and a private state dir."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.api_port, self.temporal_port = free_port(), free_temporal_port()
        self.lab_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.env = {**os.environ, "BULKHEAD_LAB_MODBUS_PORT": str(self.lab_port)}
        # Every lab server on a port of its own: nothing else on this host is disturbed.
        for server in ("LDAP", "SCIM", "VAULT", "OPCUA", "HTTP"):
            self.env[f"BULKHEAD_LAB_{server}_PORT"] = str(free_port())
        self.env.pop("BULKHEAD_WEBHOOK_SECRET", None)
        self.process: subprocess.Popen[str] | None = None
        self.stderr_log = state_dir.parent / f"{state_dir.name}-up.stderr"

    def start(self) -> str:
        self._stderr = self.stderr_log.open("a")  # the child writes it until stop()
        self.process = subprocess.Popen(
            [
                BULKHEAD,
                "up",
                "--state-dir",
                str(self.state_dir),
                "--api-port",
                str(self.api_port),
                "--temporal-port",
                str(self.temporal_port),
            ],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            # Kept, not discarded: when `up` cannot start, the assertion says why.
            stderr=self._stderr,
            text=True,
        )
        assert self.process.stdout is not None
        banner = []
        for line in self.process.stdout:
            banner.append(line)
            if line.startswith("Stop:"):
                break
        else:
            # Nothing will stop() an instance that never started: let go of its files here.
            self.process.wait(timeout=30)
            self.process.stdout.close()
            self._stderr.close()
            said = self.stderr_log.read_text()[-3000:]
            raise AssertionError(f"bulkhead up ended before its banner: {said}")
        return "".join(banner)

    def ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("bulkhead up never became ready")

    def cli(self, *args: str, token: str | None = None) -> str:
        """Run `bulkhead ARGS` against this instance; it must succeed. Returns stdout."""
        env = dict(self.env)
        if token:
            env["BULKHEAD_TOKEN"] = token
        local = args[0] in ("principals", "audit")  # these read the state dir, not the API
        api = [] if local else ["--api-url", self.api]
        done = subprocess.run(
            [BULKHEAD, *args, "--state-dir", str(self.state_dir), *api],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, f"bulkhead {' '.join(args)}: {done.stderr}"
        return done.stdout

    @property
    def reader(self) -> dict[str, str]:
        """Headers with the local operator's viewer token, which `up` writes (0600)."""
        token = (self.state_dir / "operator-token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def send(self, finding: Path) -> str:
        """`bulkhead send generic FILE`; the incident id it was filed under."""
        accepted = json.loads(self.cli("send", "generic", str(finding)))
        return str(accepted["findings"][0]["incident_id"])

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
            self._stderr.close()


def polled(
    up: Up, incident_id: str, ready: Callable[[dict[str, Any]], bool], what: str, timeout_s: float
) -> dict[str, Any]:
    """The incident as the API shows it, once `ready` says so."""
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{up.api}/v1/incidents/{incident_id}", headers=up.reader, timeout=5)
        if response.status_code == 200:
            body = response.json()
            if ready(body):
                return body
        time.sleep(0.1)
    raise AssertionError(f"{what}: {json.dumps(body)[:2000]}")


def incident(up: Up, incident_id: str, state: str, timeout_s: float = 20) -> dict[str, Any]:
    def reached(body: dict[str, Any]) -> bool:
        return bool(body["steps"]) and body["steps"][0]["state"] == state

    return polled(up, incident_id, reached, f"step never reached {state}", timeout_s)


def test_readme_demo_contains_and_survives_a_restart(tmp_path: Path):
    up = Up(tmp_path / "state")
    banner = up.start()
    try:
        assert f"API           {up.api}" in banner
        # The banner says where the secret is, never the secret itself.
        assert "whsec_" not in banner
        assert f"Webhook secret in {(up.state_dir / 'webhook-secret').resolve()}" in banner
        up.ready()
        # Reads need a principal: anonymous is 401, the local operator's viewer token reads.
        assert httpx.get(f"{up.api}/v1/incidents", timeout=10).status_code == 401
        assert up.state_dir.stat().st_mode & 0o777 == 0o700
        for path in up.state_dir.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
        incident_id = up.send(EXAMPLE)
        shown = incident(up, incident_id, "verified")
        assert shown["status"] == "contained"
        assert asyncio.run(read_mode("127.0.0.1", up.lab_port, 1)) == MODE_FLASH
        # One process, one /metrics: the API's webhook counts and the worker's steps.
        # The worker counts from the exported audit trail, a moment after `verified`.
        deadline = time.monotonic() + 15
        metrics = ""
        while "bulkhead_time_to_contain_seconds_count 1.0" not in metrics:
            assert time.monotonic() < deadline, metrics
            metrics = httpx.get(f"{up.api}/metrics", timeout=10).text
            time.sleep(0.1)
        assert 'bulkhead_webhook_requests_total{outcome="accepted",source="generic"} 1.0' in metrics
        assert 'bulkhead_decisions_total{verdict="contain"} 1.0' in metrics
        assert "bulkhead_time_to_contain_seconds_count 1.0" in metrics
    finally:
        assert up.stop() == 0
    assert (up.state_dir / "temporal.db").is_file()
    # Write-ahead logging (one sync per commit, not a journal file made and deleted each
    # time): the mode is recorded in the file itself.
    with contextlib.closing(sqlite3.connect(up.state_dir / "temporal.db")) as database:
        assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    # A second `bulkhead up` on the same state dir finds the open incident again.
    again = Up(tmp_path / "state")
    again.start()
    try:
        again.ready()
        response = httpx.get(f"{again.api}/v1/incidents", headers=again.reader, timeout=10)
        listed = response.json()["incidents"]
        assert incident_id in [row["incident_id"] for row in listed]
        assert incident(again, incident_id, "verified")["status"] == "contained"
    finally:
        assert again.stop() == 0


def test_second_up_on_same_state_dir_refuses(tmp_path: Path):
    first = Up(tmp_path / "state")
    first.start()
    try:
        second = subprocess.run(
            [
                BULKHEAD,
                "up",
                "--state-dir",
                str(first.state_dir),
                "--api-port",
                str(free_port()),
                "--temporal-port",
                str(free_port()),
            ],
            cwd=REPO,
            env=first.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode != 0
        assert "another `bulkhead up`" in second.stderr
    finally:
        assert first.stop() == 0


def test_readme_responder_walkthrough(tmp_path: Path):
    """Every command of the README's responder section, as a user types them."""
    up = Up(tmp_path / "state")
    up.start()
    try:
        up.ready()
        alice = up.cli("principals", "add", "alice", "--role", "responder").strip()
        dora = up.cli("principals", "add", "dora", "--role", "duty-officer").strip()
        up.cli("automation", "pause", "--reason", "drill", token=dora)
        incident_id = up.send(REPO / "examples/findings/signal-firmware-change.json")
        assert incident_id == "inc-tsc-0002"
        waiting = incident(up, incident_id, "awaiting_approval")
        assert waiting["steps"][0]["id"] == "fallback:tsc-0002"
        shown = json.loads(up.cli("incidents", "show", incident_id, "--json"))
        assert shown["steps"][0]["state"] == "awaiting_approval"
        assert incident_id in up.cli("incidents", "ls")
        # The list is Temporal visibility's: the waiting step is found by the filter.
        deadline = time.monotonic() + 15
        listed: list[str] = []
        while incident_id not in listed and time.monotonic() < deadline:
            rows = json.loads(up.cli("incidents", "ls", "--awaiting", "--json"))["incidents"]
            listed = [row["incident_id"] for row in rows]
        assert incident_id in listed
        up.cli("approve", incident_id, "fallback:tsc-0002", "--reason", "confirmed", token=alice)
        contained = incident(up, incident_id, "verified")
        assert asyncio.run(read_mode("127.0.0.1", up.lab_port, 2)) == MODE_FLASH
        up.cli(
            "extend",
            incident_id,
            "fallback:tsc-0002",
            "--lease-s",
            "3600",
            "--reason",
            "vendor visit",
            token=dora,
        )
        released = json.loads(
            up.cli("release", incident_id, "--reason", "reflashed", "--json", token=dora)
        )
        assert released["status"] == "released"
        reverted = [u["step_id"] for u in released["release_report"]["reverted"]]
        assert reverted == ["fallback:tsc-0002"]
        assert asyncio.run(read_mode("127.0.0.1", up.lab_port, 2)) == MODE_NORMAL
        up.cli("automation", "resume", "--reason", "drill over", token=dora)
        assert contained["steps"][0]["approvals"][0]["principal"] == "alice"
    finally:
        assert up.stop() == 0
    # The trail is exported before the incident's run ends; the chain must be intact.
    assert "OK " in up.cli("audit", "verify")


def test_broken_policy_edit_under_up_is_rejected_and_incidents_carry_on(tmp_path: Path):
    """A policy engineer saves a broken file while Bulkhead runs: the edit is rejected
    (visible at GET /v1/policy), the running version keeps deciding, incidents contain."""
    policies = Path(shutil.copytree(REPO / "policies", tmp_path / "policies"))
    up = Up(tmp_path / "state")
    up.env["BULKHEAD_POLICY_DIR"] = str(policies)
    up.start()
    try:
        up.ready()
        before = httpx.get(f"{up.api}/v1/policy", headers=up.reader, timeout=10).json()
        (policies / "bulkhead" / "containment" / "steps.rego").write_text(
            "package bulkhead.containment\n\ncandidates contains x if {\n"
        )
        deadline = time.monotonic() + 30
        status = before
        while time.monotonic() < deadline and not status.get("last_rejection"):
            time.sleep(0.2)
            status = httpx.get(f"{up.api}/v1/policy", headers=up.reader, timeout=10).json()
        assert status["last_rejection"], "the broken edit was never rejected"
        assert status["version"] == before["version"]
        incident_id = up.send(EXAMPLE)
        shown = incident(up, incident_id, "verified")
        assert shown["decision"]["policy_version"] == before["version"]
    finally:
        assert up.stop() == 0


# The findings the README sends (`grep "bulkhead send generic" README.md`).
README_FINDINGS = (
    "traffic-controller-compromise",
    "signal-firmware-change",
    "substation-rtu-writes",
    "shared-account-svc-scada",
    "permits-app-compromise",
)


def decided(up: Up, incident_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """The incident once its policy decision is in and no step is still being carried out."""
    moving = ("planned", "approved", "applying", "rolling_back")

    def settled(body: dict[str, Any]) -> bool:
        steps = body["steps"]
        return bool(body["decision"]) and all(step["state"] not in moving for step in steps)

    return polled(up, incident_id, settled, "never decided and settled", timeout_s)


def test_the_readme_incidents_export_as_valid_cacao_playbooks(tmp_path: Path):
    """#20's "the CACAO export of the README's incidents validates": each README finding
    sent to `bulkhead up`, each incident exported with `bulkhead incidents export --cacao`
    and held to the CACAO 2.0 specification's required properties and to `bulkhead
    playbook check`, as a user would check it."""
    from orchestrator.standards.cacao_check import check  # noqa: PLC0415

    up = Up(tmp_path / "state")
    up.start()
    try:
        up.ready()
        for name in README_FINDINGS:
            incident_id = up.send(REPO / "examples/findings" / f"{name}.json")
            view = decided(up, incident_id)
            exported = up.cli("incidents", "export", "--cacao", incident_id)
            document = json.loads(exported)
            assert document["type"] == "playbook", name
            assert spec_problems(document) == [], name
            assert [p.line() for p in check(document)] == [], name
            # Every step the incident has is in the playbook, by its Bulkhead name.
            names = " ".join(step.get("name", "") for step in document["workflow"].values())
            for step in view["steps"]:
                assert step["id"] in names, (name, step["id"])
            path = tmp_path / f"{name}.cacao.json"
            path.write_text(exported)
            checked = subprocess.run(
                [BULKHEAD, "playbook", "check", str(path)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert checked.returncode == 0, (name, checked.stdout, checked.stderr)
    finally:
        assert up.stop() == 0
