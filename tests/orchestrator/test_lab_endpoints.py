"""No lab default in production (#16): a record without an endpoint is an error outside the lab.

The adapters aim a record that names no endpoint at the lab's simulators on this host;
where no lab runs, a production typo would then drive nothing. Only where Settings.lab
is on (`bulkhead up`, the tests' harness) does the missing endpoint mean the lab.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import make_settings

from contracts.adapter import StepCommand
from orchestrator.config import DEFAULT_POLICY_DIR, Settings
from orchestrator.lab.traffic import TrafficLab
from orchestrator.wiring.adapters import build_adapters
from orchestrator.wiring.inventory import Inventory, MissingEndpointError, UnsetEndpoint

BULKHEAD = str(Path(sys.executable).parent / "bulkhead")
EXPECTED = [
    UnsetEndpoint("asset", "tsc-0002", "modbus", "assets.tsc-0002.modbus.endpoint"),
    UnsetEndpoint("asset", "rtu-e01", "opcua", "assets.rtu-e01.opcua.endpoint"),
    UnsetEndpoint("asset", "tram-ops-01", "http", "assets.tram-ops-01.http.base_url"),
    UnsetEndpoint("system", "scim-idp", "scim", "systems.scim-idp.connection.endpoint"),
    UnsetEndpoint(
        "enforcement point", "city-gw", "nftables", "network.enforcement_points.city-gw.endpoint"
    ),
]


def shipped_inventory() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEFAULT_POLICY_DIR / "data/inventory.json").read_text())
    return data


def without_endpoints(data: dict[str, Any]) -> dict[str, Any]:
    """The shipped city with one record of each kind missing its endpoint key."""
    del data["assets"]["tsc-0002"]["modbus"]["endpoint"]
    data["assets"]["rtu-e01"]["opcua"]["endpoint"] = ""  # empty says no more than absent
    del data["assets"]["tram-ops-01"]["http"]["base_url"]
    del data["systems"]["scim-idp"]["connection"]["endpoint"]
    del data["network"]["enforcement_points"]["city-gw"]["endpoint"]
    return data


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A copy of the shipped policies whose inventory leaves endpoints out."""
    target = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, target)
    inventory = without_endpoints(shipped_inventory())
    (target / "data/inventory.json").write_text(json.dumps(inventory))
    return target


def test_each_record_without_an_endpoint_is_named_with_its_adapter():
    assert Inventory(without_endpoints(shipped_inventory())).unset_endpoints() == EXPECTED


def test_explicit_endpoints_and_records_no_adapter_drives_are_not_reported():
    data = shipped_inventory()
    # A system without a connection is known to the policy only; a device type without a
    # protocol has no service record to read, whatever keys its asset carries.
    data["systems"]["paper-ledger"] = {"adapter": "ldap", "zone": "municipal-it"}
    data["assets"]["ws-1"] = {"type": "workstation", "modbus": {"unit": 9}}
    assert Inventory(data).unset_endpoints() == []


def test_outside_the_lab_building_the_adapters_refuses_and_names_every_record(policy_dir, tmp_path):
    settings = Settings(policy_dir=policy_dir, state_dir=tmp_path / "state", lab=False)
    with pytest.raises(MissingEndpointError) as refused:
        build_adapters(settings, Inventory.load(policy_dir))
    assert refused.value.unset == EXPECTED
    for record in EXPECTED:
        assert record.describe() in str(refused.value)


def test_lab_is_off_unless_set(monkeypatch, tmp_path):
    monkeypatch.delenv("BULKHEAD_LAB", raising=False)
    assert Settings(state_dir=tmp_path).lab is False
    monkeypatch.setenv("BULKHEAD_LAB", "true")
    assert Settings(state_dir=tmp_path).lab is True


async def test_in_the_lab_a_record_without_endpoint_drives_the_labs_simulator(
    policy_dir, traffic_lab: TrafficLab
):
    settings = make_settings(traffic_lab.port, policy_dir=policy_dir)
    assert settings.lab is True
    adapters = build_adapters(settings, Inventory.load(policy_dir))
    command = StepCommand(
        incident_id="inc-lab",
        step_id="fallback:tsc-0002",
        adapter="modbus",
        action="set",
        target={"asset": "tsc-0002"},
        args={"mode": "flash"},
    )
    # The plan reads the controller's register: only the lab's server answers for it.
    plan = await adapters["modbus"].plan(command)
    assert plan.changes, plan.summary


def bulkhead(policy_dir: Path, state_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it, with no lab setting in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKHEAD_")}
    env["BULKHEAD_POLICY_DIR"] = str(policy_dir)
    return subprocess.run(
        [BULKHEAD, *argv, "--state-dir", str(state_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_adapters_check_names_each_record_and_exits_1(policy_dir, tmp_path):
    result = bulkhead(policy_dir, tmp_path / "state", "adapters", "check")
    assert result.returncode == 1
    for record in EXPECTED:
        assert record.describe() in result.stderr
    assert "BULKHEAD_LAB=true" in result.stderr

    as_json = bulkhead(policy_dir, tmp_path / "state", "adapters", "check", "--json")
    assert as_json.returncode == 1
    unset = json.loads(as_json.stdout)["unset_endpoints"]
    assert [(u["id"], u["adapter"], u["missing"]) for u in unset] == [
        (r.record_id, r.adapter, r.key) for r in EXPECTED
    ]


def test_worker_refuses_to_start_before_it_reaches_temporal(policy_dir, tmp_path):
    # Nothing listens on port 1: a worker that got past the check would fail on Temporal.
    result = bulkhead(policy_dir, tmp_path / "state", "worker", "--temporal-address", "127.0.0.1:1")
    assert result.returncode == 1
    assert result.stderr.startswith("error: 5 inventory record(s) name no endpoint")
    for record in EXPECTED:
        assert record.describe() in result.stderr
    assert "Temporal" not in result.stderr
