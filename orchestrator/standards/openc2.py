"""The OpenC2 commands equivalent to a containment step, where an OpenC2 profile has them.

EQUIVALENTS below is the one table of what maps to what; it follows these sections:

- SLPF, the OpenC2 Profile for Stateless Packet Filtering v1.0 (CS01, 11 July 2019):
  §2.1.2 targets `ipv4_net`/`ipv6_net` (CIDR) and `ipv4_connection`/`ipv6_connection`
  (five-tuple; a property left out means any); §2.1.3 arguments `duration` (milliseconds,
  the Language Specification's Duration), `response_requested` and `slpf.insert_rule` (a
  rule id the consumer MUST assign; the producer then MUST ask for `complete`, §2.3.2);
  §2.3.1 allow, §2.3.2 deny; §2.3.4.1 `delete slpf:rule_number`, which removes a rule
  rather than counteracting it: the undo. Annex A.1 and A.2 show the shapes used here.
  A network quarantine is `deny` of the host's own address; a zone isolation is `deny` of
  each zone CIDR, after `allow ipv4_connection` both ways for each management conduit the
  isolation keeps open (lower rule ids: top-down lists match them first).
- ER, the OpenC2 Actuator Profile for Endpoint Response v1.0 (CSD01): §2.1.2.2 and §2.1.3
  the `er:account` target (Account: `account_name`), §2.1.4 the arguments
  `er.account_status` (enabled | disabled) and `er.downstream_device`, which a producer
  MUST send with `set er:account` (§2.3.8.4); Annex E.2. An identity revocation is `set
  er:account` disabled, on the device group named after the system holding the account;
  its undo is the same command with `enabled`.
- Service fallback (a controller's safe mode over Modbus, OPC UA or HTTP): neither profile
  has an action for a device's operating mode, so there is no equivalent; the CACAO export
  writes a `manual` command for it (orchestrator/standards/cacao.py).

A lease travels as `duration`, so a consumer ends the containment on its own when Bulkhead
is gone, as the nftables sets' own timeouts do (policies: "dead-man's switch").
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from contracts.incident import StepView

Command = dict[str, Any]
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network

# Where the OpenC2 consumer of #20.1 listens, and what it reads (DESIGN.md, "Incidents").
OPENC2_PATH = "/v1/openc2"
OPENC2_CONTENT_TYPE = "application/openc2+json;version=1.0"
RULE_IDS_PER_STEP = 100
SLPF_TARGETS = ("ipv4_net", "ipv6_net", "ipv4_connection", "ipv6_connection")


@dataclass(frozen=True)
class Addresses:
    """What the inventory knows of where a step's target is: a step names an asset, a zone
    or conduits by id, and an OpenC2 command needs their addresses."""

    assets: Mapping[str, str] = field(default_factory=dict)  # asset id -> IP address
    zones: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # zone -> CIDRs
    conduits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # id -> CIDRs

    @classmethod
    def from_inventory(cls, data: Mapping[str, Any]) -> Addresses:
        """From the inventory's JSON (policies/data/inventory.json)."""
        assets = {
            uid: str(record["ip"])
            for uid, record in _table(data.get("assets")).items()
            if isinstance(record, dict) and record.get("ip")
        }
        network = data.get("network")
        conduits = _table(network.get("conduits") if isinstance(network, dict) else None)
        return cls(assets, _cidrs(_table(data.get("zones"))), _cidrs(conduits))


@dataclass(frozen=True)
class Equivalent:
    """A step as OpenC2 commands: those that do what it does, and those that undo it."""

    profile: str  # the actuator profile: "slpf" or "er"
    apply: tuple[Command, ...]
    undo: tuple[Command, ...]  # empty when the step cannot be undone
    activity: str  # what `apply` does, from CACAO's playbook-activity-type-ov


def equivalent(incident_id: str, step: StepView, addresses: Addresses) -> Equivalent | None:
    """The OpenC2 commands for `step`; None where no profile has them, or where the
    addresses they need are not known (the export then writes a manual command)."""
    mapper = EQUIVALENTS.get(step.adapter)
    return mapper(incident_id, step, addresses) if mapper else None


def content_b64(command: Command) -> str:
    """A command as the `content_b64` of a CACAO openc2-http command (RFC 4648 §4)."""
    text = json.dumps(command, sort_keys=True, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


# --- SLPF ------------------------------------------------------------------------------------


def _slpf(incident_id: str, step: StepView, addresses: Addresses) -> Equivalent | None:
    rules = _rule_ids(incident_id, step.id)
    if "device" in step.target:
        host = _net(addresses.assets.get(str(step.target["device"]), ""))
        if host is None:
            return None
        rule = next(rules)
        deny = _deny(host, rule, step.lease_s)
        return _slpf_equivalent([deny], [rule], step, "disconnect-system")
    if "zone" in step.target:
        return _isolation(step, addresses, rules)
    return _commanded(step, rules)


def _commanded(step: StepView, rules: Iterator[int]) -> Equivalent | None:
    """A step an OpenC2 command asked for (openc2_consumer.py) names its OpenC2 target
    already: the same deny again, under the same rule number the consumer answered."""
    key = next((k for k in step.target if k in SLPF_TARGETS), None)
    if key is None:
        return None
    rule = next(rules)
    deny = {
        "action": "deny",
        "target": {key: step.target[key]},
        "args": _slpf_args(rule, step.lease_s),
        "actuator": {"slpf": {}},
    }
    activity = "disconnect-system" if key.endswith("_net") else "restrict-access"
    return _slpf_equivalent([deny], [rule], step, activity)


def _isolation(step: StepView, addresses: Addresses, rules: Iterator[int]) -> Equivalent | None:
    zone = [_net(c) for c in addresses.zones.get(str(step.target["zone"]), ())]
    kept = step.args.get("allow", [])
    if not isinstance(kept, list) or any(str(c) not in addresses.conduits for c in kept):
        return None  # a conduit kept open whose address is unknown: not expressible
    conduits = [_net(c) for conduit in kept for c in addresses.conduits[str(conduit)]]
    nets = [n for n in zone if n is not None]
    opened = [n for n in conduits if n is not None]
    if not nets or len(nets) < len(zone) or len(opened) < len(conduits):
        return None
    commands: list[Command] = []
    ids: list[int] = []
    for net in nets:
        for conduit in (c for c in opened if c.version == net.version):
            for src, dst in ((conduit, net), (net, conduit)):
                ids.append(next(rules))
                commands.append(_allow_connection(src, dst, ids[-1], step.lease_s))
    for net in nets:
        ids.append(next(rules))
        commands.append(_deny(net, ids[-1], step.lease_s))
    return _slpf_equivalent(commands, ids, step, "disconnect-system")


def _slpf_equivalent(
    commands: list[Command], ids: list[int], step: StepView, activity: str
) -> Equivalent:
    undo = tuple(_delete(rule) for rule in ids) if step.reversible else ()
    return Equivalent("slpf", tuple(commands), undo, activity)


def _slpf_args(rule: int, lease_s: int | None) -> dict[str, Any]:
    args: dict[str, Any] = {"response_requested": "complete", "slpf": {"insert_rule": rule}}
    if lease_s:
        args["duration"] = lease_s * 1000
    return args


def _deny(net: IPNet, rule: int, lease_s: int | None) -> Command:
    return {
        "action": "deny",
        "target": {f"ipv{net.version}_net": str(net)},
        "args": _slpf_args(rule, lease_s),
        "actuator": {"slpf": {}},
    }


def _allow_connection(src: IPNet, dst: IPNet, rule: int, lease_s: int | None) -> Command:
    return {
        "action": "allow",
        "target": {f"ipv{src.version}_connection": {"src_addr": str(src), "dst_addr": str(dst)}},
        "args": _slpf_args(rule, lease_s),
        "actuator": {"slpf": {}},
    }


def _delete(rule: int) -> Command:
    # §2.3.4.1: exactly one rule_number, no argument but response_requested.
    return {
        "action": "delete",
        "target": {"slpf:rule_number": rule},
        "args": {"response_requested": "complete"},
        "actuator": {"slpf": {}},
    }


def _rule_ids(incident_id: str, step_id: str) -> Iterator[int]:
    """Rule ids of one step: a block of its own, the same for the same incident and step.
    §2.1.3.2 asks ids unique per producer and consumer; a hash makes a clash unlikely."""
    digest = hashlib.sha256(f"{incident_id}:{step_id}".encode()).digest()
    block = int.from_bytes(digest[:4], "big") % 10_000_000
    return count(block * RULE_IDS_PER_STEP + 1)


# --- ER --------------------------------------------------------------------------------------


def _er_account(incident_id: str, step: StepView, addresses: Addresses) -> Equivalent | None:
    del incident_id, addresses  # an account is named, not addressed
    identity, system = step.target.get("identity"), step.target.get("system")
    if not isinstance(identity, str) or not isinstance(system, str):
        return None

    def set_status(status: str, lease_s: int | None) -> Command:
        args: dict[str, Any] = {
            "er": {"account_status": status, "downstream_device": {"device_groups": [system]}}
        }
        if lease_s:
            args["duration"] = lease_s * 1000
        return {
            "action": "set",
            "target": {"er": {"account": {"account_name": identity}}},
            "args": args,
            "actuator": {"er": {}},
        }

    undo = (set_status("enabled", None),) if step.reversible else ()
    return Equivalent("er", (set_status("disabled", step.lease_s),), undo, "restrict-access")


# adapter -> its OpenC2 equivalent. Absent (no equivalent, a manual command): the service
# fallback adapters modbus, opcua and http (see the module docstring).
EQUIVALENTS: dict[str, Callable[[str, StepView, Addresses], Equivalent | None]] = {
    "nftables": _slpf,
    "ldap": _er_account,
    "scim": _er_account,
    "vault": _er_account,
}


# --- helpers ---------------------------------------------------------------------------------


def _net(text: str) -> IPNet | None:
    try:
        return ipaddress.ip_network(text, strict=False) if text else None
    except ValueError:
        return None


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _cidrs(records: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    return {
        name: tuple(str(c) for c in record.get("cidrs", []))
        for name, record in records.items()
        if isinstance(record, dict)
    }
