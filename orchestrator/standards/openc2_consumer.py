"""What an OpenC2 command asks of Bulkhead: the inverse of the equivalents table
(orchestrator/standards/openc2.py), from a checked command (openc2_command.py) to a
proposal of steps for the policy, an undo of steps, or an answer about features.

The pairs, and the specification sections they follow:
- SLPF v1.0 §2.3.2 `deny ipv4_net` and `deny ipv4_connection`: an nftables step at the
  enforcement points guarding the addresses (adapters/network/topology.py), leased for
  `duration` or until `stop_time` (LS §3.3.1.4). §2.3.4.1 `delete slpf:rule_number`: the
  rule number is the step (`rule_number`), and deleting it releases the step.
- ER v1.0 §2.3.3.1 `contain device` with `device_containment: network_isolation`: the
  host's quarantine, sparing `permitted_addresses.ipv4_net`; §2.3.4.1 `allow device`
  releases it. §2.3.8.4 `set er:account`: `disabled` revokes the account on every system
  holding it (or the `downstream_device.device_groups` named), `enabled` releases that.
- LS §4.1 `query features`.
Everything else is 501 with the profile's status text. Not carried out, and why:
`allow` of an address or connection (Bulkhead's table only ever drops: an accept would end
the chain and let traffic slip past every other incident's drops, adapters/network/
ruleset.py; an exception to a containment is that containment's `allow`), IPv6 targets (the
inventory's zones are IPv4 only), `update file`, and the SLPF options `insert_rule` (the
rule number is the step's, assigned here), `direction` other than both and `drop_process`
other than none (§2.1.3.2: an unsupported option is a 501, never a 200).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from contracts.incident import Principal
from orchestrator.policy.models import CommandInput, CommandProducer
from orchestrator.standards.openc2 import RULE_IDS_PER_STEP, _rule_ids
from orchestrator.standards.openc2_command import Command, CommandError, malformed, parse_net
from orchestrator.standards.openc2_command import unsupported as not_supported

PROFILES = ("slpf", "er")
# LS §3.4.2.1 Action-Targets: what `query features` answers for `pairs`, by profile.
PAIRS_BY_PROFILE: dict[str, dict[str, list[str]]] = {
    "slpf": {
        "query": ["features"],
        "deny": ["ipv4_net", "ipv4_connection"],
        "delete": ["slpf:rule_number"],
    },
    "er": {
        "query": ["features"],
        "contain": ["device"],
        "allow": ["device"],
        "set": ["er:account"],
    },
}
VERSIONS = ["1.0"]
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def pairs() -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for table in PAIRS_BY_PROFILE.values():
        for action, targets in table.items():
            merged.setdefault(action, []).extend(t for t in targets if t not in merged[action])
    return merged


@dataclass(frozen=True)
class Query:
    features: list[str]


@dataclass(frozen=True)
class Proposal:
    """Steps the command asks for, carried to the incident of `entity` for the policy."""

    command: CommandInput
    entity: str
    kind: str  # what the entity is: asset, address or account
    zone: str | None
    title: str


@dataclass(frozen=True)
class Undo:
    """Release the steps a command made: by rule number, or those of an entity."""

    rule_number: int | None = None
    entity: str | None = None
    step_ids: tuple[str, ...] = field(default_factory=tuple)


Request = Query | Proposal | Undo


def rule_number(incident_id: str, step_id: str) -> int:
    """SLPF's rule number of a step: the first rule id of its block, as the CACAO export
    numbers its rules (openc2._rule_ids), so both name a step alike."""
    return next(_rule_ids(incident_id, step_id))


def names_step(number: int, incident_id: str, step_id: str) -> bool:
    """Whether a rule number falls in the block of a step (a zone isolation's export names
    several rules of one step; deleting any of them releases the step)."""
    first = rule_number(incident_id, step_id)
    return first <= number < first + RULE_IDS_PER_STEP


class Translator:
    """Commands to requests against one inventory (its JSON, as the policy reads it)."""

    def __init__(self, inventory: dict[str, Any]) -> None:
        self.zones: dict[str, dict[str, Any]] = inventory.get("zones", {})
        self.assets: dict[str, dict[str, Any]] = inventory.get("assets", {})
        self.systems: dict[str, dict[str, Any]] = inventory.get("systems", {})
        self.identities: dict[str, dict[str, Any]] = inventory.get("identities", {})

    def translate(self, command: Command, producer: Principal, *, now_ms: int) -> Request:
        profile = self._profile(command)
        table = PAIRS_BY_PROFILE[profile] if profile else pairs()
        if command.target not in table.get(command.action, []):
            raise not_supported(_why_not(command))
        if command.action == "query":
            _only_response_requested(command, "query features (LS §4.1)")
            return Query(list(command.value))
        if command.action == "delete":
            _only_response_requested(command, "delete slpf:rule_number (SLPF §2.3.4.1)")
            return Undo(rule_number=int(command.value))
        if command.action == "allow":
            asset = self._asset(command.value)
            containment = command.profile_args("er").get("device_containment")
            if containment not in (None, "network_isolation"):
                raise not_supported(f"Option not supported: device_containment {containment}")
            return Undo(entity=asset, step_ids=(f"quarantine:{asset}",))
        lease_s = _lease_s(command, now_ms)
        base = {
            "action": command.action,
            "target": command.document()["target"],
            "command_id": command.command_id or "",
            "producer": CommandProducer(id=producer.id, name=producer.name, roles=producer.roles),
        }
        if lease_s is not None:
            base["lease_s"] = lease_s
        if command.action == "set":
            return self._account(command, base)
        if command.action == "contain":
            return self._quarantine(command, base)
        return self._deny(command, base)

    # --- profiles and options ---------------------------------------------------------

    @staticmethod
    def _profile(command: Command) -> str | None:
        named = {command.actuator} if command.actuator else set()
        named |= set(command.extension_args)
        nsid, colon, _ = command.target.partition(":")
        if colon:
            named.add(nsid)
        unknown = sorted(named - set(PROFILES))
        if unknown:
            raise not_supported(
                f"profile {', '.join(unknown)} not supported (Bulkhead consumes slpf and er)"
            )
        if len(named) > 1:
            raise malformed(f"the command mixes the profiles {sorted(named)}")
        return next(iter(named), None)

    # --- SLPF ------------------------------------------------------------------------

    def _deny(self, command: Command, base: dict[str, Any]) -> Proposal:
        _slpf_options(command)
        if command.target == "ipv4_net":
            net = parse_net(command.value, 4, "target.ipv4_net")
            found, whole = self._zone_of(net)
            zone = str(found)
            entity, kind = self._entity_of(net)
            step_id = f"deny:{net.network_address}_{net.prefixlen}"
            title = f"deny ipv4_net {net}"
            zones: list[str] = [zone]
            wholes: list[str] = [zone] if whole else []
        else:
            tuple_ = dict(command.value)
            ends = [
                parse_net(tuple_[end], 4, f"target.ipv4_connection.{end}")
                for end in ("src_addr", "dst_addr")
                if end in tuple_
            ]
            if not ends:
                raise not_supported(
                    "Target type not supported: a connection without src_addr or dst_addr "
                    "would cut that traffic city-wide; Bulkhead contains addresses"
                )
            inside = [(net, *self._zone_of(net, required=False)) for net in ends]
            placed = [(net, zone, whole) for net, zone, whole in inside if zone]
            if not placed:
                raise not_supported(
                    f"Target type not supported: neither end of the connection lies in an "
                    f"inventory zone ({', '.join(map(str, ends))})"
                )
            zones = sorted({str(zone) for _, zone, _ in placed})
            wholes = sorted({str(zone) for _, zone, whole in placed if whole})
            entity, kind = self._entity_of(placed[0][0])
            canonical = json.dumps(tuple_, sort_keys=True)
            step_id = f"deny-flow:{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"
            title = "deny ipv4_connection " + " ".join(
                f"{k}={v}" for k, v in sorted(tuple_.items())
            )
        step = {
            "id": step_id,
            "adapter": "nftables",
            "action": "deny",
            "target": {command.target: command.value},
            "zones": zones,
            "whole_zones": wholes,
        }
        proposal = CommandInput.model_validate({**base, "profile": "slpf", "steps": [step]})
        return Proposal(proposal, entity, kind, zones[0], title)

    def _zone_of(self, net: IPNet, *, required: bool = True) -> tuple[str | None, bool]:
        """The one inventory zone holding `net` (or covered by it), and whether `net`
        covers that zone whole. 501 when it spans zones, or (if required) lies in none."""
        inside, covered = [], []
        for name, zone in self.zones.items():
            cidrs = [ipaddress.ip_network(c) for c in zone.get("cidrs", [])]
            same = [c for c in cidrs if c.version == net.version]
            if any(net.subnet_of(c) for c in same):  # type: ignore[arg-type]
                inside.append(name)
            elif same and any(c.subnet_of(net) for c in same):  # type: ignore[arg-type]
                covered.append(name)
        if len(inside) + len(covered) > 1:
            raise not_supported(
                f"Target type not supported: {net} spans the zones "
                f"{', '.join(sorted(inside + covered))}; Bulkhead contains within one zone"
            )
        if covered:
            whole = all(
                ipaddress.ip_network(c).subnet_of(net)  # type: ignore[arg-type]
                for c in self.zones[covered[0]].get("cidrs", [])
            )
            if not whole:
                raise not_supported(f"Target type not supported: {net} cuts part of a zone")
            return covered[0], True
        if inside:
            cidrs = [ipaddress.ip_network(c) for c in self.zones[inside[0]].get("cidrs", [])]
            return inside[0], cidrs == [net]
        if required:
            raise not_supported(
                f"Target type not supported: no inventory zone holds {net}; Bulkhead "
                "contains addresses inside the city's zones"
            )
        return None, False

    def _entity_of(self, net: IPNet) -> tuple[str, str]:
        """The incident key of an address: the asset the inventory gives it, else itself."""
        if net.num_addresses == 1:
            address = str(net.network_address)
            for uid, asset in self.assets.items():
                if str(asset.get("ip")) == address:
                    return uid, "asset"
            return address, "address"
        return str(net), "address"

    # --- ER --------------------------------------------------------------------------

    def _asset(self, device: dict[str, str]) -> str:
        """ER §2.3.3.1/§2.3.4.1: a device Bulkhead cannot reach is 500 'Cannot access device'."""
        wanted = [device.get("device_id"), device.get("hostname"), device.get("idn_hostname")]
        for name in (w for w in wanted if w):
            for uid, asset in self.assets.items():
                if name.lower() in (uid.lower(), str(asset.get("name", "")).lower()):
                    if not asset.get("ip"):
                        raise CommandError(500, f"Cannot access device: {uid} has no address")
                    return uid
        raise CommandError(500, f"Cannot access device: no inventory asset is {device}")

    def _quarantine(self, command: Command, base: dict[str, Any]) -> Proposal:
        er = command.profile_args("er")
        containment = er.get("device_containment")
        if containment is None:
            raise malformed("Containment type argument not populated (ER §2.3.3.1)")
        if containment != "network_isolation":
            raise not_supported(f"Option not supported: device_containment {containment}")
        asset = self._asset(command.value)
        args: dict[str, Any] = {}
        permitted = er.get("permitted_addresses", {})
        if set(permitted) - {"ipv4_net"}:
            raise not_supported("Option not supported: permitted_addresses other than ipv4_net")
        if permitted:
            kept = permitted["ipv4_net"]
            if not isinstance(kept, list) or not kept:
                raise malformed("args.er.permitted_addresses.ipv4_net must be a list")
            args["allow"] = [str(parse_net(n, 4, "permitted_addresses.ipv4_net")) for n in kept]
        zone = str(self.assets[asset].get("zone", "<unknown>"))
        step = {
            "id": f"quarantine:{asset}",
            "adapter": "nftables",
            "action": "contain",
            "target": {"device": asset},
            "args": args,
            "zones": [zone],
        }
        proposal = CommandInput.model_validate({**base, "profile": "er", "steps": [step]})
        return Proposal(proposal, asset, "asset", zone, f"contain device {asset}")

    def _account(self, command: Command, base: dict[str, Any]) -> Request:
        er = command.profile_args("er")
        status = er.get("account_status")
        if status is None:
            raise malformed("Account-status type argument not populated (ER §2.3.8.4)")
        account = command.value
        name = next(
            (n for n in (account.get("account_name"), account.get("uid")) if n in self.identities),
            None,
        )
        if name is None:
            raise CommandError(500, f"Cannot access account: the inventory holds no {account}")
        holders = list(self.identities[name].get("holders", []))
        downstream = er.get("downstream_device", {})
        if set(downstream) - {"device_groups"}:
            raise not_supported("Option not supported: downstream_device other than device_groups")
        groups = downstream.get("device_groups", holders)
        if not isinstance(groups, list) or not groups or set(groups) - set(holders):
            raise CommandError(500, f"Cannot access account: {name} lives on {holders} only")
        systems = [h for h in holders if h in groups and h in self.systems]
        step_ids = tuple(f"revoke:{name}@{system}" for system in systems)
        if status == "enabled":
            return Undo(entity=name, step_ids=step_ids)
        zones = list(self.identities[name].get("used_in_zones", [])) or ["<unknown>"]
        steps = [
            {
                "id": step_id,
                "adapter": self.systems[system]["adapter"],
                "action": self.systems[system].get("revocation", {}).get("action", "deny"),
                "target": {"identity": name, "system": system},
                "reversible": self.systems[system].get("revocation", {}).get("reversible") is True,
                "zones": zones,
            }
            for step_id, system in zip(step_ids, systems, strict=True)
        ]
        proposal = CommandInput.model_validate({**base, "profile": "er", "steps": steps})
        return Proposal(proposal, name, "account", None, f"set er:account {name} disabled")


def _why_not(command: Command) -> str:
    """The status text the profiles ask for (SLPF §2.3.1, §2.3.5.1; ER §2.3.3, §2.3.4)."""
    if command.action == "allow" and command.target != "device":
        return (
            "Target type not supported: Bulkhead only drops traffic (an allow rule would let "
            "traffic past every other containment); `delete slpf:rule_number` undoes a deny"
        )
    if command.target.startswith("ipv6"):
        return "Target type not supported: the inventory's zones are IPv4"
    if command.action == "update":
        return "Command not supported"
    return f"Command not supported: {command.action} {command.target}"


def _only_response_requested(command: Command, what: str) -> None:
    if set(command.args) - {"response_requested"} or command.extension_args:
        raise malformed(f"{what} takes no argument but response_requested")


def _slpf_options(command: Command) -> None:
    slpf = command.profile_args("slpf")
    if "insert_rule" in slpf:
        raise not_supported("Option not supported: insert_rule (the rule number is the step's)")
    if slpf.get("direction", "both") != "both":
        raise not_supported("Option not supported: direction (Bulkhead cuts both directions)")
    if slpf.get("drop_process", "none") != "none":
        raise not_supported("Option not supported: drop_process (Bulkhead drops silently)")


def _lease_s(command: Command, now_ms: int) -> int | None:
    """LS §3.3.1.4: the command ends at `stop_time`, or at its start (`start_time`, else
    now) plus `duration`; the lease is what is left of it from now. A start in the future
    is an option Bulkhead does not have (501); an end already past, a mistake (400)."""
    start = command.args.get("start_time")
    if start is not None and start > now_ms + 1000:
        raise not_supported("Option not supported: a start_time in the future")
    if "stop_time" in command.args:
        end = int(command.args["stop_time"])
    elif "duration" in command.args:
        end = int(start if start is not None else now_ms) + int(command.args["duration"])
    else:
        return None
    if end <= now_ms:
        raise malformed("args: the command's time is over (its stop_time or start + duration)")
    return max(1, -(-(end - now_ms) // 1000))
