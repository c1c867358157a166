"""What a network step means: the city's zones, devices, management conduits and the
enforcement points guarding them, and the resolution of one OpenC2-style step into the
address sets the firewall will match.

Pure (no I/O), so `plan` can show exactly what apply would add without touching anything.
Every refusal is a PermanentAdapterError: retrying the same step cannot make it valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, collapse_addresses, ip_network
from typing import Any

from adapters.base import PermanentAdapterError

IPNet = IPv4Network | IPv6Network

ISOLATE = "isolate"  # cut one side off from everything but the allowlist
CONDUIT = "conduit"  # cut the traffic between two zones, both directions
FLOW = "flow"  # cut one direction of a connection (an OpenC2 ipv4/ipv6_connection)
ACTIONS = ("contain", "deny")
CONNECTION_KEYS = ("ipv4_connection", "ipv6_connection")
TARGET_KEYS = ("zone", "ipv4_net", "ipv6_net", "device", "zones", *CONNECTION_KEYS)
ARG_KEYS = ("allow", "timeout_s")
PROTOCOLS = ("icmp", "tcp", "udp", "sctp")


HOOKS = ("input", "forward", "output")
GATEWAY_HOOKS = ("forward",)  # a gateway routes the zones' traffic; it is no endpoint


@dataclass(frozen=True)
class EnforcementPoint:
    """A firewall Bulkhead may program: this host, or a named network namespace.

    `hooks` are where its rules go: `forward` at a gateway between zones; also `input`
    and `output` on a host whose own traffic is to be cut. Each hook costs rules, and
    every verify reads all of them back, so a gateway carries only what it needs.
    """

    id: str
    netns: str | None = None  # None: the network stack Bulkhead itself runs in
    zones: frozenset[str] = frozenset()
    hooks: tuple[str, ...] = GATEWAY_HOOKS

    def __post_init__(self) -> None:
        if not self.hooks or set(self.hooks) - set(HOOKS):
            raise PermanentAdapterError(f"{self.id}: hooks must be some of {HOOKS}")

    def describe(self) -> str:
        return f"{self.id} (netns {self.netns})" if self.netns else f"{self.id} (this host)"

    def as_record(self) -> dict[str, Any]:
        """Kept in the receipt, so rollback reaches the same firewall after an inventory edit."""
        return {"id": self.id, "netns": self.netns, "hooks": list(self.hooks)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> EnforcementPoint:
        netns = record.get("netns")
        hooks = tuple(record.get("hooks") or GATEWAY_HOOKS)
        return cls(id=str(record["id"]), netns=str(netns) if netns else None, hooks=hooks)


@dataclass(frozen=True)
class NetworkTopology:
    zones: Mapping[str, tuple[IPNet, ...]] = field(default_factory=dict)
    devices: Mapping[str, IPNet] = field(default_factory=dict)
    conduits: Mapping[str, tuple[IPNet, ...]] = field(default_factory=dict)
    points: tuple[EnforcementPoint, ...] = ()

    def points_for(self, zones: Iterable[str]) -> tuple[EnforcementPoint, ...]:
        wanted = set(zones)
        return tuple(p for p in self.points if p.zones & wanted)

    def zone_containing(self, net: IPNet) -> str | None:
        for zone, cidrs in self.zones.items():
            if any(net.version == c.version and net.subnet_of(c) for c in cidrs):  # type: ignore[arg-type]
                return zone
        return None


@dataclass(frozen=True)
class Flow:
    """The rest of a connection's five-tuple (OpenC2 LS §3.4.1.10): None is any."""

    protocol: str | None = None
    src_port: int | None = None
    dst_port: int | None = None


@dataclass(frozen=True)
class Selection:
    """One step, resolved: which addresses to cut, which to spare, and where."""

    kind: str
    # ISOLATE: one side (the contained addresses); CONDUIT: the two zones' addresses;
    # FLOW: (sources, destinations), either empty for any (never both).
    sides: tuple[tuple[IPNet, ...], ...]
    allow: tuple[IPNet, ...]
    timeout_s: int | None
    points: tuple[EnforcementPoint, ...]
    summary: str
    flow: Flow | None = None


def parse_net(text: object, what: str) -> IPNet:
    """A CIDR or a bare address; host bits set is refused rather than widened silently."""
    if not isinstance(text, str):
        raise PermanentAdapterError(f"{what} must be a string CIDR, got {text!r}")
    try:
        return ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise PermanentAdapterError(f"{what}: {exc}") from exc


def collapse(nets: Iterable[IPNet]) -> tuple[IPNet, ...]:
    """Merged and sorted, v4 before v6: the form sets are built from and compared in."""
    items = list(nets)
    v4 = collapse_addresses(n for n in items if isinstance(n, IPv4Network))
    v6 = collapse_addresses(n for n in items if isinstance(n, IPv6Network))
    return (*v4, *v6)


def _zone(topology: NetworkTopology, name: object) -> str:
    if not isinstance(name, str) or name not in topology.zones:
        raise PermanentAdapterError(
            f"unknown zone {name!r} (inventory zones: {', '.join(sorted(topology.zones))})"
        )
    if not topology.zones[name]:
        raise PermanentAdapterError(f"zone {name!r} has no CIDRs in the inventory")
    return name


def _single_side(topology: NetworkTopology, key: str, value: object) -> tuple[IPNet, str, str]:
    """(net, zone, label) of a one-address-block target: an OpenC2 net or a device."""
    if key == "device":
        if not isinstance(value, str) or value not in topology.devices:
            raise PermanentAdapterError(f"unknown device {value!r}: no inventory asset has an ip")
        net = topology.devices[value]
        label = f"device {value} ({net})"
    else:
        net = parse_net(value, f"target.{key}")
        if net.version != (4 if key == "ipv4_net" else 6):
            raise PermanentAdapterError(f"target.{key} holds an IPv{net.version} network")
        label = str(net)
    zone = topology.zone_containing(net)
    if zone is None:
        # Also refuses a block spanning zones (e.g. the whole city /15): name the zones.
        raise PermanentAdapterError(f"{label} lies in no single inventory zone")
    return net, zone, label


def _port(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise PermanentAdapterError(f"{what} must be a port number, got {value!r}")
    return value


def _connection(
    topology: NetworkTopology, key: str, value: object
) -> tuple[tuple[IPNet, ...], tuple[IPNet, ...], Flow, list[str], str]:
    """(sources, destinations, the rest of the tuple, zones touched, label) of a connection.
    One end may lie outside the city (an attacker's address); at least one must be in a
    zone, which names the enforcement points. A connection with no address is refused:
    it would cut that traffic everywhere."""
    if not isinstance(value, Mapping):
        raise PermanentAdapterError(f"target.{key} must be an object")
    unknown = sorted(set(value) - {"src_addr", "src_port", "dst_addr", "dst_port", "protocol"})
    if unknown:
        raise PermanentAdapterError(f"target.{key}: unknown {unknown}")
    version = 4 if key == "ipv4_connection" else 6
    ends: dict[str, tuple[IPNet, ...]] = {}
    for end in ("src_addr", "dst_addr"):
        if value.get(end) is not None:
            net = parse_net(value[end], f"target.{key}.{end}")
            if net.version != version:
                raise PermanentAdapterError(f"target.{key}.{end} holds an IPv{net.version} network")
            ends[end] = (net,)
    if not ends:
        raise PermanentAdapterError(f"target.{key} names no address: it would cut everywhere")
    protocol = value.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        raise PermanentAdapterError(f"target.{key}.protocol must be one of {PROTOCOLS}")
    flow = Flow(
        protocol=protocol,
        src_port=_port(value.get("src_port"), f"target.{key}.src_port"),
        dst_port=_port(value.get("dst_port"), f"target.{key}.dst_port"),
    )
    if protocol == "icmp" and (flow.src_port is not None or flow.dst_port is not None):
        raise PermanentAdapterError(f"target.{key}: icmp has no ports")
    zones = [z for nets in ends.values() if (z := topology.zone_containing(nets[0])) is not None]
    if not zones:
        raise PermanentAdapterError(f"target.{key}: neither end lies in an inventory zone")
    src, dst = ends.get("src_addr", ()), ends.get("dst_addr", ())
    label = " ".join(
        part
        for part in (
            f"from {src[0]}" if src else "",
            f"to {dst[0]}" if dst else "",
            protocol or "",
            f"sport {flow.src_port}" if flow.src_port is not None else "",
            f"dport {flow.dst_port}" if flow.dst_port is not None else "",
        )
        if part
    )
    return src, dst, flow, sorted(set(zones)), label


def _allow(topology: NetworkTopology, value: object) -> tuple[IPNet, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PermanentAdapterError("args.allow must be a list of conduit ids or CIDRs")
    nets: list[IPNet] = []
    for item in value:
        if isinstance(item, str) and item in topology.conduits:
            nets.extend(topology.conduits[item])
        elif isinstance(item, str) and any(ch in item for ch in ".:"):
            nets.append(parse_net(item, "args.allow"))
        else:
            known = ", ".join(sorted(topology.conduits)) or "none"
            raise PermanentAdapterError(
                f"args.allow: {item!r} is neither a CIDR nor a management conduit ({known})"
            )
    return collapse(nets)


def _timeout(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PermanentAdapterError(f"args.timeout_s must be a positive integer, got {value!r}")
    return value


def resolve(
    topology: NetworkTopology, action: str, target: Mapping[str, Any], args: Mapping[str, Any]
) -> Selection:
    """The step contract: `contain`/`deny` on `zone`, `ipv4_net`, `ipv6_net`, `device`, and
    `deny` on `zones: [a, b]`; args `allow` (conduit ids or CIDRs) and `timeout_s`."""
    if action not in ACTIONS:
        raise PermanentAdapterError(f"nftables adapter supports {ACTIONS}, not {action!r}")
    # Unknown args are refused, not ignored: a misspelt `allow` would silently cut the
    # management conduits responders need.
    unknown = sorted(set(args) - set(ARG_KEYS))
    if unknown:
        raise PermanentAdapterError(f"unknown args {unknown} (allowed: {list(ARG_KEYS)})")
    keys = [k for k in target if k in TARGET_KEYS]
    if len(keys) != 1 or len(target) != 1:
        raise PermanentAdapterError(
            f"target must have exactly one of {list(TARGET_KEYS)}, got {dict(target)!r}"
        )
    key = keys[0]
    sides: tuple[tuple[IPNet, ...], ...]
    allow = _allow(topology, args.get("allow"))
    timeout_s = _timeout(args.get("timeout_s"))
    flow: Flow | None = None
    if key in CONNECTION_KEYS:
        if allow:
            raise PermanentAdapterError("args.allow does not apply to a connection")
        src, dst, flow, touched, label = _connection(topology, key, target[key])
        kind, sides = FLOW, (src, dst)
        summary = f"deny the connection {label} in zone(s) {', '.join(touched)}"
    elif key == "zones":
        pair = target["zones"]
        if action != "deny":
            raise PermanentAdapterError("restricting a conduit between zones is action `deny`")
        if not isinstance(pair, list) or len(pair) != 2 or pair[0] == pair[1]:
            raise PermanentAdapterError("target.zones must name two different zones")
        first, second = _zone(topology, pair[0]), _zone(topology, pair[1])
        touched = [first, second]
        kind, sides = CONDUIT, (topology.zones[first], topology.zones[second])
        summary = f"deny traffic between zones {first} and {second}"
    elif key == "zone":
        zone = _zone(topology, target["zone"])
        touched, kind, sides = [zone], ISOLATE, (topology.zones[zone],)
        summary = f"isolate zone {zone} ({', '.join(map(str, topology.zones[zone]))})"
    else:
        net, zone, label = _single_side(topology, key, target[key])
        touched, kind, sides = [zone], ISOLATE, ((net,),)
        summary = f"isolate {label} in zone {zone}"
    points = topology.points_for(touched)
    if not points:
        raise PermanentAdapterError(
            f"no enforcement point guards zone(s) {', '.join(touched)}: add one under "
            "network.enforcement_points in the inventory"
        )
    if allow:
        summary += f" except {', '.join(map(str, allow))}"
    return Selection(
        kind=kind,
        sides=tuple(collapse(side) for side in sides),
        allow=allow,
        timeout_s=timeout_s,
        points=points,
        summary=summary,
        flow=flow,
    )
