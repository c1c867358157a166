"""The city inventory (policies/data/inventory.json) as seen from Python.

Policies stay pure functions of input and data, so enrichment happens here: resolving the
resources a finding names to inventory assets, and asset records to adapter devices.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.network.topology import (
    GATEWAY_HOOKS,
    HOOKS,
    EnforcementPoint,
    IPNet,
    NetworkTopology,
    parse_net,
)
from adapters.service.modbus import ModbusDevice
from workflows.model import Finding

LAB_ENDPOINT = "lab"
LOCAL_ENDPOINT = "local"  # an enforcement point in the network stack Bulkhead runs in
NETNS_ENDPOINT = "netns:"


class Inventory:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.assets: dict[str, dict[str, Any]] = data.get("assets", {})
        self._by_ip = {a["ip"]: uid for uid, a in self.assets.items() if "ip" in a}

    @classmethod
    def load(cls, policy_dir: Path) -> Inventory:
        path = policy_dir / "data" / "inventory.json"
        return cls(json.loads(path.read_text()))

    def asset_ids_for(self, findings: list[Finding]) -> list[str]:
        """Assets named by resource uid, or by the IP of an evidence endpoint."""
        found: list[str] = []
        for finding in findings:
            candidates = [r.uid for r in finding.resources]
            for evidence in finding.evidences:
                for endpoint in (evidence.src_endpoint, evidence.dst_endpoint):
                    if endpoint is not None and endpoint.ip in self._by_ip:
                        candidates.append(self._by_ip[endpoint.ip])
            found.extend(c for c in candidates if c in self.assets and c not in found)
        return found

    def asset_records(self, asset_ids: list[str]) -> list[dict[str, Any]]:
        return [{"id": uid, **self.assets[uid]} for uid in asset_ids]

    def modbus_devices(self, *, lab_host: str, lab_port: int) -> dict[str, ModbusDevice]:
        """Every asset reachable over Modbus; endpoint "lab" means the local lab server."""
        device_types = self.data.get("device_types", {})
        devices: dict[str, ModbusDevice] = {}
        for uid, asset in self.assets.items():
            modbus = asset.get("modbus")
            device_type = device_types.get(asset.get("type", ""), {})
            if not modbus or device_type.get("protocol") != "modbus":
                continue
            endpoint = modbus.get("endpoint", LAB_ENDPOINT)
            if endpoint == LAB_ENDPOINT:
                host, port = lab_host, lab_port
            else:
                host, _, port_text = endpoint.rpartition(":")
                port = int(port_text)
            devices[uid] = ModbusDevice(
                asset=uid,
                host=host,
                port=port,
                unit=int(modbus["unit"]),
                mode_register=int(device_type["mode_register"]),
                modes=dict(device_type["modes"]),
                safe_mode=device_type.get("safe_mode"),
            )
        return devices

    def network_topology(self, *, lab_gateway_netns: str) -> NetworkTopology:
        """Zones, device addresses, management conduits and enforcement points (the
        `network` key); endpoint "lab" is the lab's gateway namespace, "local" this host,
        "netns:NAME" a named namespace; optional `hooks` (default: forward at a namespace,
        input/forward/output on this host)."""
        network = self.data.get("network", {})
        zones = {
            name: tuple(parse_net(c, f"zones.{name}.cidrs") for c in zone.get("cidrs", []))
            for name, zone in self.data.get("zones", {}).items()
        }
        devices: dict[str, IPNet] = {
            uid: parse_net(asset["ip"], f"assets.{uid}.ip")
            for uid, asset in self.assets.items()
            if asset.get("ip")
        }
        conduits = {
            cid: tuple(parse_net(c, f"network.conduits.{cid}") for c in conduit.get("cidrs", []))
            for cid, conduit in network.get("conduits", {}).items()
        }
        points = []
        for pid, point in network.get("enforcement_points", {}).items():
            endpoint = str(point.get("endpoint", LAB_ENDPOINT))
            if endpoint == LAB_ENDPOINT:
                netns: str | None = lab_gateway_netns
            elif endpoint == LOCAL_ENDPOINT:
                netns = None
            elif endpoint.startswith(NETNS_ENDPOINT) and endpoint != NETNS_ENDPOINT:
                netns = endpoint.removeprefix(NETNS_ENDPOINT)
            else:
                raise ValueError(
                    f"network.enforcement_points.{pid}.endpoint: {endpoint!r} is not "
                    '"lab", "local" or "netns:NAME"'
                )
            # A namespace is a gateway between zones; this host is taken as an endpoint.
            hooks = tuple(point.get("hooks") or (GATEWAY_HOOKS if netns else HOOKS))
            guarded = frozenset(point.get("zones", []))
            points.append(EnforcementPoint(pid, netns, guarded, hooks))
        return NetworkTopology(zones, devices, conduits, tuple(points))
