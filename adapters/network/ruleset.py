"""The nftables side of a step: its names, the JSON batch that adds it, the batch that
removes it, the batch that renews its timeouts, its rendering in nft syntax (for plans),
and reading it back from a listing.

Bulkhead owns one table, `inet bulkhead`, whose base chains (one per netfilter hook an
enforcement point uses: forward, plus input/output on an endpoint) have policy accept:
the table only ever drops, and other tables keep their own verdicts. Each step gets its
own named sets, `bh_<tag>_<role><4|6>` with tag = 16 hex digits of sha256(incident:step),
and rules that reference only those sets, so a step's state is found, verified and
removed without touching any other incident's.

Rules only drop, never accept: an accept would end this chain for the packet and let it
slip past the drop rules of every incident added after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import ip_address, ip_network, summarize_address_range
from typing import Any

from adapters.base import PermanentAdapterError
from adapters.network.topology import CONDUIT, FLOW, HOOKS, Flow, IPNet, Selection, collapse

FAMILY = "inet"
TABLE = "bulkhead"
COMMENT_MAX = 128  # nft refuses longer comments; the tag, not the comment, identifies a step
_PROTOCOL = {4: "ip", 6: "ip6"}
ENDS = ("saddr", "daddr")


def tag_of(key: str) -> str:
    """Set-name safe, fixed length, and the same for the same `incident:step` key."""
    return "bh_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def comment_of(key: str) -> str:
    return f"bulkhead {key}"[:COMMENT_MAX]


@dataclass(frozen=True)
class SetSpec:
    name: str
    version: int
    elements: tuple[IPNet, ...]
    timeout_s: int | None = None

    @property
    def type(self) -> str:
        return f"ipv{self.version}_addr"


@dataclass(frozen=True)
class Match:
    field: str  # "saddr" | "daddr"
    version: int
    set_name: str
    negate: bool = False


@dataclass(frozen=True)
class Layer4:
    """A connection's protocol or port (`meta l4proto tcp`, `tcp dport 502`)."""

    field: str  # "l4proto" | "sport" | "dport"
    value: str | int
    protocol: str = "th"  # the header a port is read from: tcp, udp, sctp or th (any)


@dataclass(frozen=True)
class RuleSpec:
    chain: str
    matches: tuple[Match, ...]
    layer4: tuple[Layer4, ...] = ()


@dataclass(frozen=True)
class StepRules:
    """Everything one step adds at one enforcement point."""

    key: str
    tag: str
    sets: tuple[SetSpec, ...]
    rules: tuple[RuleSpec, ...]

    def at(self, hooks: Iterable[str]) -> StepRules:
        """The step as one enforcement point carries it: rules on its hooks only."""
        wanted = set(hooks)
        return replace(self, rules=tuple(r for r in self.rules if r.chain in wanted))

    @property
    def chains(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.chain for r in self.rules))

    def set_elements(self) -> dict[str, list[str]]:
        """What verify must read back in the sets: kept in the receipt, JSON-safe."""
        return {s.name: [str(n) for n in s.elements] for s in self.sets}


def _rules_for(kind: str, sets: Mapping[str, SetSpec], version: int) -> list[tuple[Match, ...]]:
    side, peer, allow = sets["s"], sets.get("p"), sets.get("a")

    def spare(*fields: str) -> tuple[Match, ...]:
        if allow is None:
            return ()
        return tuple(Match(f, version, allow.name, negate=True) for f in fields)

    if kind == CONDUIT and peer is not None:
        # Both directions between the zones; a flow is spared when either end is allowed.
        return [
            (Match("saddr", version, src.name), Match("daddr", version, dst.name), *spare(*ENDS))
            for src, dst in ((side, peer), (peer, side))
        ]
    # Isolation, both directions; a flow is spared when its other end is allowlisted.
    return [
        (Match(own, version, side.name), *spare(other))
        for own, other in (ENDS, tuple(reversed(ENDS)))
    ]


def _layer4(flow: Flow) -> tuple[Layer4, ...]:
    """A protocol alone is matched as such; a port implies its protocol (or any, `th`)."""
    ports = [(name, port) for name, port in (("sport", flow.src_port), ("dport", flow.dst_port))]
    given = [(name, port) for name, port in ports if port is not None]
    if not given:
        return (Layer4("l4proto", flow.protocol),) if flow.protocol else ()
    return tuple(Layer4(name, port, flow.protocol or "th") for name, port in given)


def _flow(selection: Selection, tag: str) -> tuple[list[SetSpec], list[RuleSpec]]:
    """A connection, one direction: sources to destinations (an absent end is any)."""
    src, dst = selection.sides
    layer4 = _layer4(selection.flow or Flow())
    sets: list[SetSpec] = []
    rules: list[RuleSpec] = []
    for version in (4, 6):
        ends = [
            (role, field, tuple(n for n in side if n.version == version))
            for role, field, side in (("s", "saddr", src), ("p", "daddr", dst))
            if side
        ]
        if not all(nets for _, _, nets in ends):
            continue  # an end with nothing of this family: no packet of it can match
        named = [(SetSpec(f"{tag}_{role}{version}", version, nets, selection.timeout_s), field)
                 for role, field, nets in ends]  # fmt: skip
        sets.extend(spec for spec, _ in named)
        matches = tuple(Match(field, version, spec.name) for spec, field in named)
        rules.extend(RuleSpec(chain, matches, layer4) for chain in HOOKS)
    return sets, rules


def build(selection: Selection, key: str) -> StepRules:
    tag = tag_of(key)
    sets: list[SetSpec] = []
    rules: list[RuleSpec] = []
    if selection.kind == FLOW:
        sets, rules = _flow(selection, tag)
    for version in (4, 6) if selection.kind != FLOW else ():
        per_side = [tuple(n for n in side if n.version == version) for side in selection.sides]
        if not all(per_side):
            continue  # nothing of this family on some side: no rule could match
        named: dict[str, SetSpec] = {}
        for role, nets in zip("sp", per_side, strict=False):
            named[role] = SetSpec(f"{tag}_{role}{version}", version, nets, selection.timeout_s)
        allow = tuple(n for n in selection.allow if n.version == version)
        if allow:
            # No timeout on the allowlist: if it expired first, the step would cut more.
            named["a"] = SetSpec(f"{tag}_a{version}", version, allow)
        sets.extend(named.values())
        for matches in _rules_for(selection.kind, named, version):
            rules.extend(RuleSpec(chain, matches) for chain in HOOKS)
    if not rules:
        raise PermanentAdapterError(f"{selection.summary}: the two sides share no IP family")
    return StepRules(key=key, tag=tag, sets=tuple(sets), rules=tuple(rules))


# --- JSON (libnftables-json, schema version 1) -------------------------------------------


def _prefix(net: IPNet) -> dict[str, Any]:
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _match_json(match: Match) -> dict[str, Any]:
    left = {"payload": {"protocol": _PROTOCOL[match.version], "field": match.field}}
    op = "!=" if match.negate else "=="
    return {"match": {"op": op, "left": left, "right": f"@{match.set_name}"}}


def _layer4_json(layer4: Layer4) -> dict[str, Any]:
    if layer4.field == "l4proto":
        left: dict[str, Any] = {"meta": {"key": "l4proto"}}
    else:
        left = {"payload": {"protocol": layer4.protocol, "field": layer4.field}}
    return {"match": {"op": "==", "left": left, "right": layer4.value}}


def _ids(**more: Any) -> dict[str, Any]:
    return {"family": FAMILY, "table": TABLE, **more}


def ensure_commands(chains: Iterable[str]) -> list[dict[str, Any]]:
    """The table and base chains, for the first step at an enforcement point (or hook)."""
    added = [
        {"add": {"chain": _ids(name=c, type="filter", hook=c, prio=0, policy="accept")}}
        for c in chains
    ]
    return [{"add": {"table": {"family": FAMILY, "name": TABLE}}}, *added]


def add_commands(step: StepRules) -> list[dict[str, Any]]:
    """One atomic batch. Sets use `create`, which fails if the set exists: a second apply
    of the same key (another worker, a retry racing the first) can never add rules twice.

    The table and chains are not in it (see ensure_commands): re-adding an existing chain
    is a chain update in the kernel, which costs more than the whole step.
    """
    comment = comment_of(step.key)
    commands: list[dict[str, Any]] = []
    for spec in step.sets:
        flags = ["interval", "timeout"] if spec.timeout_s else ["interval"]
        commands.append({"create": {"set": _ids(name=spec.name, type=spec.type, flags=flags)}})
        commands.append(_add_elements(spec.name, spec.elements, step.key, spec.timeout_s))
    for rule in step.rules:
        expr = [
            *(_match_json(m) for m in rule.matches),
            *(_layer4_json(m) for m in rule.layer4),
            {"counter": None},
            {"drop": None},
        ]
        commands.append({"add": {"rule": _ids(chain=rule.chain, comment=comment, expr=expr)}})
    return commands


def _add_elements(
    name: str, nets: Iterable[IPNet], key: str, timeout_s: int | None
) -> dict[str, Any]:
    elems = []
    for net in nets:
        elem: dict[str, Any] = {"val": _prefix(net), "comment": comment_of(key)}
        if timeout_s:
            elem["timeout"] = timeout_s
        elems.append({"elem": elem})
    return {"add": {"element": _ids(name=name, elem=elems)}}


def renew_commands(
    expiring: Mapping[str, Iterable[str]], key: str, timeout_s: int
) -> list[dict[str, Any]]:
    """One atomic batch that gives every element of the step's expiring sets a new timeout:
    each set is flushed and filled again. No packet sees a set empty (the kernel commits
    the batch whole), it also brings back elements that already timed out, and it does
    not rely on re-adding an element updating its timeout, which older kernels ignore.
    """
    commands: list[dict[str, Any]] = []
    for name, elements in expiring.items():
        nets = collapse(ip_network(e) for e in elements)
        commands.append({"flush": {"set": _ids(name=name)}})
        commands.append(_add_elements(name, nets, key, timeout_s))
    return commands


def remove_commands(observed: Observed) -> list[dict[str, Any]]:
    """Rules first: a set still referenced by a rule cannot be deleted."""
    rules = [{"delete": {"rule": _ids(chain=r.chain, handle=r.handle)}} for r in observed.rules]
    return [*rules, *({"delete": {"set": _ids(name=name)}} for name in observed.sets)]


def batch(commands: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *commands]}


# --- nft syntax, for plans and humans ----------------------------------------------------


def render_rule(rule: RuleSpec, key: str) -> str:
    parts = [
        f"{_PROTOCOL[m.version]} {m.field} {'!= ' if m.negate else ''}@{m.set_name}"
        for m in rule.matches
    ]
    parts += [
        f"meta l4proto {m.value}" if m.field == "l4proto" else f"{m.protocol} {m.field} {m.value}"
        for m in rule.layer4
    ]
    return (
        f"add rule {FAMILY} {TABLE} {rule.chain} {' '.join(parts)} counter drop "
        f'comment "{comment_of(key)}"'
    )


def render(step: StepRules) -> list[str]:
    lines = [f"add table {FAMILY} {TABLE}"]
    lines += [
        f"add chain {FAMILY} {TABLE} {c} {{ type filter hook {c} priority 0; policy accept; }}"
        for c in step.chains
    ]
    for spec in step.sets:
        flags = "interval,timeout" if spec.timeout_s else "interval"
        timeout = f" timeout {spec.timeout_s}s" if spec.timeout_s else ""
        elements = ", ".join(
            f'{n}{timeout} comment "{comment_of(step.key)}"' for n in spec.elements
        )
        lines.append(
            f"create set {FAMILY} {TABLE} {spec.name} {{ type {spec.type}; flags {flags}; }}"
        )
        lines.append(f"add element {FAMILY} {TABLE} {spec.name} {{ {elements} }}")
    lines += [render_rule(r, step.key) for r in step.rules]
    return lines


# --- reading a listing back ----------------------------------------------------------------


@dataclass(frozen=True)
class ObservedRule:
    chain: str
    handle: int
    packets: int


@dataclass(frozen=True)
class Observed:
    """One step's state as `nft -j list table inet bulkhead` shows it."""

    table: bool
    sets: Mapping[str, tuple[IPNet, ...]]
    rules: tuple[ObservedRule, ...]
    expires_s: int | None = None
    # Sets created with the `timeout` flag: each listed element's seconds left (None: the
    # element has no timeout of its own). nft lists whole seconds, rounded down.
    expiring: Mapping[str, tuple[int | None, ...]] = field(default_factory=dict)

    @property
    def present(self) -> bool:
        return bool(self.sets or self.rules)

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "present": self.present,
            "sets": {name: [str(n) for n in nets] for name, nets in self.sets.items()},
            "rules": len(self.rules),
            "dropped_packets": sum(r.packets for r in self.rules),
        }
        if self.expires_s is not None:
            record["expires_in_s"] = self.expires_s
        return record


def _value_nets(value: Any) -> list[IPNet]:
    if isinstance(value, str):
        return [ip_network(value)]
    if isinstance(value, dict) and "prefix" in value:
        return [ip_network(f"{value['prefix']['addr']}/{value['prefix']['len']}")]
    if isinstance(value, dict) and "range" in value:
        low, high = (ip_address(v) for v in value["range"])
        return list(summarize_address_range(low, high))
    raise ValueError(f"unexpected set element {value!r}")


def _elements(raw: Any) -> tuple[tuple[IPNet, ...], tuple[int | None, ...]]:
    """The set's addresses, collapsed, and each listed element's seconds left."""
    nets: list[IPNet] = []
    expires: list[int | None] = []
    for item in raw if isinstance(raw, list) else [raw]:
        left = None
        if isinstance(item, dict) and "elem" in item:
            if "expires" in item["elem"]:
                left = int(item["elem"]["expires"])
            item = item["elem"]["val"]  # noqa: PLW2901 - unwrap the element's value
        expires.append(left)
        nets.extend(_value_nets(item))
    return collapse(nets), tuple(expires)


def _has_timeout_flag(listed_set: Mapping[str, Any]) -> bool:
    flags = listed_set.get("flags", [])
    return "timeout" in ([flags] if isinstance(flags, str) else flags)


def _references(rule: Mapping[str, Any], tag: str) -> bool:
    for statement in rule.get("expr", []):
        right = statement.get("match", {}).get("right") if isinstance(statement, dict) else None
        if isinstance(right, str) and right.startswith(f"@{tag}_"):
            return True
    return False


def _packets(rule: Mapping[str, Any]) -> int:
    for statement in rule.get("expr", []):
        if isinstance(statement, dict) and isinstance(statement.get("counter"), dict):
            return int(statement["counter"].get("packets", 0))
    return 0


def observe(listing: list[dict[str, Any]] | None, tag: str) -> Observed:
    """The step's sets and rules in a listing (None: the table does not exist)."""
    if listing is None:
        return Observed(table=False, sets={}, rules=())
    sets: dict[str, tuple[IPNet, ...]] = {}
    expiring: dict[str, tuple[int | None, ...]] = {}
    left: list[int] = []
    rules: list[ObservedRule] = []
    for item in listing:
        if "set" in item and str(item["set"].get("name", "")).startswith(f"{tag}_"):
            name = item["set"]["name"]
            sets[name], expires = _elements(item["set"].get("elem", []))
            left.extend(e for e in expires if e is not None)
            if _has_timeout_flag(item["set"]):
                expiring[name] = expires
        elif "rule" in item and _references(item["rule"], tag):
            rule = item["rule"]
            rules.append(ObservedRule(rule["chain"], int(rule["handle"]), _packets(rule)))
    return Observed(
        table=True,
        sets=sets,
        rules=tuple(rules),
        expires_s=min(left) if left else None,
        expiring=expiring,
    )


def difference(
    observed: Observed,
    sets: Mapping[str, list[str]],
    rules: int,
    *,
    timeout_s: int | None = None,
) -> str | None:
    """Why the observed state is not the step as applied (None when it is)."""
    problems = []
    for name, elements in sets.items():
        if name not in observed.sets:
            problems.append(f"set {name} missing")
            continue
        have = [str(n) for n in observed.sets[name]]
        want = [str(n) for n in collapse(ip_network(e) for e in elements)]
        if have != want:
            expired = not have and timeout_s
            note = " (its elements timed out: the dead-man's switch fired)" if expired else ""
            problems.append(f"set {name} holds {have or 'nothing'}, expected {want}{note}")
    extra = sorted(set(observed.sets) - set(sets))
    if extra:
        problems.append(f"unexpected sets {extra}")
    if len(observed.rules) != rules:
        problems.append(f"{len(observed.rules)} rules, expected {rules}")
    return "; ".join(problems) or None
