"""The API-client commands stay light: none of them loads the server's modules (#18).

`bulkhead send` and `bulkhead incidents ls` must finish within 0.5 s from process start,
and importing Temporal, FastAPI, regorus, structlog, the incident models or httpx's
unused extras would cost that budget several times over. Each case runs the real
command in a fresh interpreter against the canned API (tests/cli_canned.py) and then
reads that interpreter's `sys.modules`; timings belong to bench/cli.py, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_canned import STEP, CannedApi, against

from contracts.incident import IncidentStatus
from orchestrator.cli.responders import INCIDENT_STATUSES
from orchestrator.config import Settings, new_webhook_secret
from orchestrator.responders.operator import ensure_operator

REPO = Path(__file__).resolve().parents[3]
FINDING = REPO / "examples" / "findings" / "traffic-controller-compromise.json"

# Packages (and their submodules) that a command which only calls the API never needs.
HEAVY = (
    "temporalio",
    "fastapi",
    "uvicorn",
    "regorus",
    "structlog",
    "contracts.incident",
    "orchestrator.lab",
    "orchestrator.policy",
    "orchestrator.wiring",
    "orchestrator.temporal",
    "workflows",
    # Optional extras of httpx and httpcore that a CLI request never uses (HTTP/2,
    # httpx's own command line); see orchestrator.cli.client._import_httpx_lean.
    "h2",
    "click",
    "pygments",
)

# Runs `bulkhead ARGV` in-process and writes the loaded module names to $PROBE_OUT.
PROBE = """
import json, os, sys
from orchestrator.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help
    code = exc.code
with open(os.environ["PROBE_OUT"], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def _heavy_modules_after(tmp_path: Path, *argv: str, secret: str | None = None) -> list[str]:
    """Run the command in a fresh interpreter; the heavy modules it loaded (exit 0 asserted)."""
    probe_out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKHEAD_")}
    env["PROBE_OUT"] = str(probe_out)
    if secret is not None:
        env["BULKHEAD_WEBHOOK_SECRET"] = secret
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(probe_out.read_text())
    assert result["code"] == 0, done.stderr
    modules: list[str] = result["modules"]
    return [m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY)]


def test_send_help_loads_no_server_module(tmp_path):
    assert _heavy_modules_after(tmp_path, "send", "--help") == []


def test_send_posts_a_finding_without_loading_a_server_module(api: CannedApi, tmp_path):
    api.answer("POST", "/v1/webhooks/generic", {"findings": []})
    argv = ("send", "generic", str(FINDING), "--api-url", api.url, "--state-dir", str(tmp_path))
    assert _heavy_modules_after(tmp_path, *argv, secret=new_webhook_secret()) == []
    assert [s.path for s in api.seen] == ["/v1/webhooks/generic"]


@pytest.mark.parametrize("output", [(), ("--json",)], ids=["table", "json"])
def test_incidents_ls_loads_no_server_module(api: CannedApi, tmp_path, output):
    argv = against(api, tmp_path, "incidents", "ls", *output)
    assert _heavy_modules_after(tmp_path, *argv) == []


def test_incidents_ls_with_the_operator_credential_loads_no_server_module(api, tmp_path):
    """The token file `bulkhead up` writes is read without the principal models."""
    ensure_operator(Settings(state_dir=tmp_path))
    argv = against(api, tmp_path, "incidents", "ls", bearer=None)
    assert _heavy_modules_after(tmp_path, *argv) == []
    assert api.seen[-1].authorization is not None


@pytest.mark.parametrize("output", [(), ("--json",)], ids=["table", "json"])
def test_status_loads_no_server_module(api: CannedApi, tmp_path, output):
    argv = against(api, tmp_path, "status", *output)
    assert _heavy_modules_after(tmp_path, *argv) == []
    assert [s.path for s in api.seen] == ["/v1/city"]


def test_an_approval_loads_no_server_module(api: CannedApi, tmp_path):
    api.answer("POST", "/v1/incidents/inc-1/steps/a/approve", STEP)
    argv = against(api, tmp_path, "approve", "inc-1", "a", "--reason", "confirmed")
    assert _heavy_modules_after(tmp_path, *argv) == []


def test_the_status_filter_offers_exactly_the_incident_statuses():
    """The CLI spells the statuses out so as not to import contracts.incident."""
    assert tuple(s.value for s in IncidentStatus) == INCIDENT_STATUSES
