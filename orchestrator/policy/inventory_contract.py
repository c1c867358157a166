"""The inventory held against the adapters' contracts, before any decision is made.

What the policy can ask for must be something an adapter can do: every zone a network
step can name has an enforcement point, every asset with a fallback has a mode its
adapter supports, every holder of a shared identity has a connection record. Each check
asks the adapter itself (planning.StepAdapters), so the reason is the adapter's own.
And the guard must be able to watch what it protects: every essential service has
health probes, each one the guard can parse.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_network
from typing import Any

from adapters.guard.probes import parse_probe
from contracts.decision import DecisionStep
from orchestrator.policy.jsonpos import KeyPath
from orchestrator.policy.planning import OFFLINE_SETTINGS, StepAdapters
from orchestrator.policy.problems import Problem


def inventory_problems(
    inventory: dict[str, Any], adapters: StepAdapters, lines: dict[KeyPath, int] | None = None
) -> list[Problem]:
    """Every mismatch between the inventory and what the adapters accept (valid data
    assumed); `lines` (of data/inventory.json) put each on the line of its record."""
    problems = [
        *_zone_problems(inventory, adapters),
        *_enforcement_point_problems(inventory),
        *_device_problems(inventory, adapters),
        *_fallback_problems(inventory, adapters),
        *_holder_problems(inventory, adapters),
        *_service_problems(inventory),
    ]
    return [_placed(problem, lines or {}) for problem in problems]


INVENTORY_FILE = "data/inventory.json"
# The group names the record ("zone water"); its key in the inventory gives the line.
_RECORD_KEYS = {
    "zone": ("zones",),
    "asset": ("assets",),
    "identity": ("identities",),
    "enforcement point": ("network", "enforcement_points"),
    "service": ("services",),
}


def _placed(problem: Problem, lines: dict[KeyPath, int]) -> Problem:
    kind, _, name = problem.group.rpartition(" ")
    line = lines.get((*_RECORD_KEYS.get(kind, ()), name))
    return replace(problem, group=f"{problem.group} ({INVENTORY_FILE})", line=line)


def _zone_problems(inventory: dict[str, Any], adapters: StepAdapters) -> list[Problem]:
    """A zone holding an asset can be named by a network step: quarantining the asset
    cuts in its zone, and a critical finding about it isolates the whole zone."""
    named = sorted({str(a["zone"]) for a in inventory.get("assets", {}).values()})
    problems = []
    for zone in named:
        step = DecisionStep(
            id=f"isolate:{zone}", adapter="nftables", action="contain", target={"zone": zone}
        )
        reason = adapters.refusal(step)
        if reason is not None:
            problems.append(Problem(f"zone {zone}", f"network steps on it (nftables): {reason}"))
    return problems


def _enforcement_point_problems(inventory: dict[str, Any]) -> list[Problem]:
    """A point guarding a misspelt zone leaves the real one unguarded: name both."""
    zones = inventory.get("zones", {})
    points = inventory.get("network", {}).get("enforcement_points", {})
    return [
        Problem(
            f"enforcement point {pid}",
            f"guards zone {zone!r}, which the inventory does not have "
            f"(zones: {', '.join(sorted(zones))})",
        )
        for pid, point in points.items()
        for zone in point.get("zones", [])
        if zone not in zones
    ]


def _zone_of(ip: str, zones: dict[str, Any]) -> str | None:
    address = ip_address(ip)
    for name, zone in zones.items():
        if any(address in ip_network(cidr) for cidr in zone.get("cidrs", [])):
            return str(name)
    return None


def _device_problems(inventory: dict[str, Any], adapters: StepAdapters) -> list[Problem]:
    """A host is quarantined by its address: the firewall finds its zone from the address,
    the policy's guardrails from the asset's `zone`; the two must agree."""
    zones = inventory.get("zones", {})
    problems = []
    for uid, asset in inventory.get("assets", {}).items():
        if not asset.get("ip"):
            continue
        step = DecisionStep(
            id=f"quarantine:{uid}", adapter="nftables", action="contain", target={"device": uid}
        )
        reason = adapters.refusal(step)
        if reason is not None:
            problems.append(Problem(f"asset {uid}", f"{step.id} (nftables): {reason}"))
            continue
        found = _zone_of(str(asset["ip"]), zones)
        if found != asset["zone"]:
            problems.append(
                Problem(
                    f"asset {uid}",
                    f"ip {asset['ip']} lies in zone {found}, but the asset says zone "
                    f"{asset['zone']}: the guardrails would judge one zone while the "
                    "firewall cuts in the other",
                )
            )
    return problems


def _fallback_problems(inventory: dict[str, Any], adapters: StepAdapters) -> list[Problem]:
    """An asset whose device type has a safe mode is switched to it by its protocol's adapter."""
    device_types = inventory.get("device_types", {})
    problems = []
    for uid, asset in inventory.get("assets", {}).items():
        device_type = device_types.get(asset["type"], {})
        safe_mode, protocol = device_type.get("safe_mode"), device_type.get("protocol")
        if not safe_mode:
            continue
        step = DecisionStep(
            id=f"fallback:{uid}",
            adapter=str(protocol),
            action="set",
            target={"asset": uid},
            args={"mode": safe_mode},
        )
        reason = adapters.refusal(step)
        if reason is None:
            continue
        if not isinstance(asset.get(protocol), dict):
            reason += f" (the asset has no `{protocol}` record saying how to reach it)"
        problems.append(
            Problem(f"asset {uid}", f"{step.id} ({protocol} set {safe_mode}): {reason}")
        )
    return problems


def _holder_problems(inventory: dict[str, Any], adapters: StepAdapters) -> list[Problem]:
    """A shared identity is revoked on every system holding it, through that system's
    `connection` record: a holder without one keeps the identity alive."""
    systems = inventory.get("systems", {})
    problems = []
    for iid, identity in inventory.get("identities", {}).items():
        for holder in identity.get("holders", []):
            system = systems.get(holder, {})
            group = f"identity {iid}"
            if not isinstance(system.get("connection"), dict):
                problems.append(
                    Problem(
                        group,
                        f"held by {holder}, which has no connection record: Bulkhead cannot "
                        f"revoke {iid} there (add systems.{holder}.connection)",
                    )
                )
                continue
            step = DecisionStep(
                id=f"revoke:{iid}@{holder}",
                adapter=str(system.get("adapter")),
                action=str(system.get("revocation", {}).get("action", "deny")),
                target={"identity": iid, "system": holder},
            )
            reason = adapters.refusal(step)
            if reason is not None:
                problems.append(Problem(group, f"{step.id} ({step.adapter}): {reason}"))
    return problems


def _service_problems(inventory: dict[str, Any]) -> list[Problem]:
    """Probes as the guard reads them (orchestrator.guard). Without one, an essential
    service's health is unknown, and unknown never rolls a step back: it is unguarded."""
    settings = OFFLINE_SETTINGS
    ports = {
        "http": settings.lab_http_port,
        "opcua": settings.lab_opcua_port,
        "modbus": settings.lab_modbus_port,
    }
    problems = []
    for sid, service in inventory.get("services", {}).items():
        probes = service.get("probes", [])
        if service.get("essential") and not probes:
            problems.append(
                Problem(
                    f"service {sid}",
                    "is essential but has no probes: the guard cannot see it degrade, so no "
                    f"step touching zone {service.get('zone')} is rolled back for it",
                )
            )
        for index, config in enumerate(probes):
            try:
                parse_probe(config, lab_host=settings.lab_host, lab_ports=ports)
            except (ValueError, TypeError, AttributeError) as exc:
                # TypeError, AttributeError: a probe that is not an object at all.
                problems.append(Problem(f"service {sid}", f"probes[{index}]: {exc}"))
    return problems
