"""The city inventory (policies/data/inventory.json) as seen from Python.

Policies stay pure functions of input and data, so enrichment happens here: resolving the
resources a finding names to inventory assets, and asset records to adapter devices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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
from contracts.adapter import LAB_ENDPOINT
from contracts.findings import Finding

LOCAL_ENDPOINT = "local"  # an enforcement point in the network stack Bulkhead runs in
NETNS_ENDPOINT = "netns:"


# The key that says where each kind of record's target is; without it the adapters fall
# back to the lab, which is only right where the lab runs (Settings.lab).
_ENDPOINT_KEYS = {"modbus": "endpoint", "opcua": "endpoint", "http": "base_url"}
_IDENTITY_ADAPTERS = ("ldap", "scim", "vault")


@dataclass(frozen=True)
class UnsetEndpoint:
    """A record the adapters would point at the lab because it names no endpoint."""

    kind: str  # "asset", "system" or "enforcement point"
    record_id: str
    adapter: str
    key: str  # the JSON path that is missing, e.g. assets.tsc-0009.modbus.endpoint

    def describe(self) -> str:
        return f"{self.kind} {self.record_id} (adapter {self.adapter}): {self.key} is not set"


class MissingEndpointError(RuntimeError):
    """Records without an endpoint outside the lab: they would drive nothing real."""

    def __init__(self, unset: list[UnsetEndpoint]) -> None:
        self.unset = unset
        lines = "\n".join(f"  {record.describe()}" for record in unset)
        super().__init__(
            f"{len(unset)} inventory record(s) name no endpoint; outside the lab that is "
            "an error, not the lab on this host (set each endpoint, or BULKHEAD_LAB=true "
            f"where the lab runs):\n{lines}"
        )


def _unset(record: dict[str, Any], key: str) -> bool:
    return record.get(key) in (None, "")


def _unset_asset_endpoints(
    assets: dict[str, dict[str, Any]], device_types: dict[str, Any]
) -> list[UnsetEndpoint]:
    """Service assets: the record named by the device type's protocol (as the wiring reads)."""
    found = []
    for uid, asset in assets.items():
        protocol = str(device_types.get(asset.get("type", ""), {}).get("protocol"))
        record, key = asset.get(protocol), _ENDPOINT_KEYS.get(protocol)
        if key is not None and isinstance(record, dict) and _unset(record, key):
            found.append(UnsetEndpoint("asset", uid, protocol, f"assets.{uid}.{protocol}.{key}"))
    return found


def _unset_system_endpoints(systems: dict[str, dict[str, Any]]) -> list[UnsetEndpoint]:
    """Identity systems with a `connection` (the others are not driven at all)."""
    found = []
    for sid, system in systems.items():
        connection, adapter = system.get("connection"), str(system.get("adapter"))
        if not isinstance(connection, dict) or adapter not in _IDENTITY_ADAPTERS:
            continue
        if _unset(connection, "endpoint"):
            key = f"systems.{sid}.connection.endpoint"
            found.append(UnsetEndpoint("system", sid, adapter, key))
    return found


def _unset_point_endpoints(points: dict[str, dict[str, Any]]) -> list[UnsetEndpoint]:
    """nftables enforcement points: without an endpoint, the lab's gateway namespace."""
    return [
        UnsetEndpoint(
            "enforcement point", pid, "nftables", f"network.enforcement_points.{pid}.endpoint"
        )
        for pid, point in points.items()
        if _unset(point, "endpoint")
    ]


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
        return list(self.asset_matches(findings))

    def asset_matches(self, findings: list[Finding]) -> dict[str, list[str]]:
        """Each asset the findings name, in order, with how (the policy's `because`)."""
        found: dict[str, list[str]] = {}
        for finding in findings:
            named = [(r.uid, "resource uid") for r in finding.resources]
            for evidence in finding.evidences:
                for side, endpoint in (
                    ("source", evidence.src_endpoint),
                    ("destination", evidence.dst_endpoint),
                ):
                    if endpoint is not None and endpoint.ip in self._by_ip:
                        named.append((self._by_ip[endpoint.ip], f"{side} IP {endpoint.ip}"))
            for uid, how in named:
                ways = found.setdefault(uid, []) if uid in self.assets else None
                if ways is not None and how not in ways:
                    ways.append(how)
        return found

    def any_essential(self, zones: list[str]) -> bool:
        """Whether any of these zones is marked essential (the list flags the incident)."""
        known = self.data.get("zones", {})
        return any(bool(known.get(zone, {}).get("essential")) for zone in zones)

    def asset_records(self, asset_ids: list[str]) -> list[dict[str, Any]]:
        return [{"id": uid, **self.assets[uid]} for uid in asset_ids]

    def unset_endpoints(self) -> list[UnsetEndpoint]:
        """Every record an adapter is built from that leaves its endpoint out."""
        return [
            *_unset_asset_endpoints(self.assets, self.data.get("device_types", {})),
            *_unset_system_endpoints(self.data.get("systems", {})),
            *_unset_point_endpoints(self.data.get("network", {}).get("enforcement_points", {})),
        ]

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
