"""A production install has no lab: `bulkhead worker` runs without it, and the commands
that need it say how to get it (issue #17: the lab is a plug-in and an extra).

Each test runs the real CLI in a child process whose imports of the lab package and of
the lab's simulator packages fail, as they would where `pip install bulkhead` left the
`lab` extra out (the committed lock installs everything, so they are blocked instead).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

NO_LAB = """
import importlib.abc, sys
BLOCKED = ("orchestrator.lab", "scim2_server", "openbao")

class NoLab(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoLab())
from orchestrator.cli.main import main
sys.exit(main(sys.argv[1:]))
"""
READY = "Bulkhead worker on task queue"


def bulkhead_without_lab(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", NO_LAB, *args],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], text: str, timeout_s: float) -> list[str]:
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"no {text!r} from the child; it wrote:\n{''.join(seen)}")


def test_bulkhead_worker_runs_without_the_lab(temporal_env: WorkflowEnvironment, tmp_path: Path):
    env = {
        "BULKHEAD_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "BULKHEAD_TASK_QUEUE": f"no-lab-{uuid.uuid4().hex[:8]}",
        "BULKHEAD_STATE_DIR": str(tmp_path),
        # The shipped inventory names lab endpoints; lab mode only points them at this
        # host's ports, it loads no lab code.
        "BULKHEAD_LAB": "true",
    }
    worker = bulkhead_without_lab("worker", env=env)
    try:
        wait_for_line(worker, READY, timeout_s=90)
        # Still serving a few seconds on: it polls its task queue and imported no lab.
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.communicate(timeout=3)  # drains stderr: a full pipe would block it
        assert worker.poll() is None, "the worker stopped after starting"
        worker.send_signal(signal.SIGTERM)
        # How long the stop takes is Temporal's (a worker waits for its long polls to
        # return); what this test proves is that it ran, and never reached for the lab.
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
        _, rest = worker.communicate()  # closes the pipe, whatever happened
    assert "No module named" not in rest
    assert "Traceback" not in rest


def test_lab_up_without_the_lab_says_how_to_install_it(tmp_path: Path):
    child = bulkhead_without_lab("lab", "up", env={"BULKHEAD_STATE_DIR": str(tmp_path)})
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 1
    assert "pip install 'bulkhead[lab]'" in stderr
    assert "orchestrator.lab" in stderr  # what could not load


def test_up_without_the_lab_refuses_before_starting_anything(tmp_path: Path):
    child = bulkhead_without_lab("up", "--state-dir", str(tmp_path), env={})
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 1
    assert "pip install 'bulkhead[lab]'" in stderr
    assert not (tmp_path / "temporal.db").exists()  # no dev server was started
