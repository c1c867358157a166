"""What the inventory says of the city's shape: conduits, enforcement points, and which
zone an address, an asset or a step's target lies in. Pure functions of inventory data."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from orchestrator.city.model import Conduit, ConduitEnd, EnforcementPoint

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _net(text: object) -> Network | None:
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        return None


def _zone_nets(inventory: dict[str, Any]) -> list[tuple[str, Network]]:
    nets = []
    for name, zone in (inventory.get("zones") or {}).items():
        for cidr in zone.get("cidrs") or []:
            net = _net(cidr)
            if net is not None:
                nets.append((str(name), net))
    return nets


def zone_of_net(inventory: dict[str, Any], cidr: object) -> str | None:
    """The zone whose CIDRs hold this address or network; None when none does."""
    net = _net(cidr)
    if net is None:
        return None
    for name, zone_net in _zone_nets(inventory):
        if net.version == zone_net.version and net.subnet_of(zone_net):  # type: ignore[arg-type]
            return name
    return None


def conduits(inventory: dict[str, Any]) -> list[Conduit]:
    network = inventory.get("network") or {}
    return [
        Conduit(
            id=str(cid),
            description=str(conduit.get("description", "")),
            cidrs=[
                ConduitEnd(cidr=str(c), zone=zone_of_net(inventory, c))
                for c in conduit.get("cidrs") or []
            ],
        )
        for cid, conduit in (network.get("conduits") or {}).items()
    ]


def enforcement_points(inventory: dict[str, Any]) -> list[EnforcementPoint]:
    network = inventory.get("network") or {}
    return [
        EnforcementPoint(
            id=str(pid),
            description=str(point.get("description", "")),
            zones=[str(z) for z in point.get("zones") or []],
        )
        for pid, point in (network.get("enforcement_points") or {}).items()
    ]


def target_words(target: dict[str, Any]) -> str:
    """A step's target in a few words: `rtu-e01`, `zone energy`, `svc-a@vault`."""
    for key in ("asset", "device"):
        if target.get(key):
            return str(target[key])
    if target.get("identity"):
        system = target.get("system")
        return f"{target['identity']}@{system}" if system else str(target["identity"])
    if target.get("zone"):
        return f"zone {target['zone']}"
    if target.get("ipv4_net") or target.get("ipv6_net"):
        return str(target.get("ipv4_net") or target.get("ipv6_net"))
    return ", ".join(f"{k}={v}" for k, v in sorted(target.items())) or "-"


def zones_of_target(
    inventory: dict[str, Any], target: dict[str, Any], fallback: Iterable[str]
) -> list[str]:
    """The zones a step acts in: the zone it names, its asset's, its network's; else the
    incident's zones (an identity lives in every zone its systems serve)."""
    if target.get("zone"):
        return [str(target["zone"])]
    assets = inventory.get("assets") or {}
    for key in ("asset", "device"):
        asset = assets.get(str(target.get(key, "")))
        if isinstance(asset, dict) and asset.get("zone"):
            return [str(asset["zone"])]
    for key in ("ipv4_net", "ipv6_net"):
        found = zone_of_net(inventory, target.get(key)) if target.get(key) else None
        if found:
            return [found]
    return sorted(set(fallback))
