"""The nftables adapter without root: the step contract, the exact rules it would add, and
how failures of the `nft` process are classified. Fake `nft` binaries are small shell
scripts (real processes), standing in for a host where nft is missing or refuses.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from netlab import INVENTORY

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.network.nft import Nft
from adapters.network.nftables import NftablesAdapter
from adapters.network.ruleset import (
    add_commands,
    build,
    difference,
    observe,
    remove_commands,
    tag_of,
)
from adapters.network.topology import EnforcementPoint, NetworkTopology, resolve
from contracts.adapter import StepCommand
from orchestrator.wiring.inventory import Inventory

TOPOLOGY = INVENTORY.network_topology(lab_gateway_netns="bt-test-gw")


def command(action: str, target: dict, args: dict | None = None, step: str = "s1") -> StepCommand:
    return StepCommand(
        incident_id="inc-1",
        step_id=step,
        adapter="nftables",
        action=action,
        target=target,
        args=args or {},
    )


def fake_nft(tmp_path: Path, script: str) -> str:
    path = tmp_path / "nft"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def local_adapter(binary: str, timeout_s: float = 5.0) -> NftablesAdapter:
    """Enforcing on "this host", so the fake binary runs without `ip netns exec`."""
    point = EnforcementPoint("local-fw", None, frozenset(TOPOLOGY.zones))
    topology = NetworkTopology(TOPOLOGY.zones, TOPOLOGY.devices, TOPOLOGY.conduits, (point,))
    return NftablesAdapter(topology, nft=Nft(binary=binary, timeout_s=timeout_s))


# --- the step contract -------------------------------------------------------------------


def test_zone_target_resolves_to_the_zone_cidrs_at_the_gateway_guarding_it():
    selection = resolve(TOPOLOGY, "contain", {"zone": "traffic"}, {})
    assert [str(n) for n in selection.sides[0]] == ["198.18.10.0/24"]
    assert [p.netns for p in selection.points] == ["bt-test-gw"]


def test_device_and_openc2_net_targets_resolve_to_one_address():
    by_device = resolve(TOPOLOGY, "deny", {"device": "tsc-0001"}, {})
    by_net = resolve(TOPOLOGY, "deny", {"ipv4_net": "198.18.10.11/32"}, {})
    assert by_device.sides == by_net.sides
    assert [str(n) for n in by_net.sides[0]] == ["198.18.10.11/32"]


def test_allow_accepts_management_conduit_ids_and_cidrs():
    selection = resolve(
        TOPOLOGY,
        "contain",
        {"zone": "traffic"},
        {"allow": ["dispatch-preemption", "198.18.40.0/28"], "timeout_s": 60},
    )
    assert [str(n) for n in selection.allow] == ["198.18.40.0/28", "198.18.50.10/32"]
    assert selection.timeout_s == 60


@pytest.mark.parametrize(
    ("action", "target", "args", "says"),
    [
        ("set", {"zone": "traffic"}, {}, "supports"),
        ("contain", {"zone": "harbour"}, {}, "unknown zone"),
        ("contain", {"host": "198.18.10.11"}, {}, "exactly one of"),
        ("contain", {"zone": "traffic", "device": "tsc-0001"}, {}, "exactly one of"),
        ("deny", {"ipv4_net": "198.18.10.11/24"}, {}, "host bits set"),
        ("deny", {"ipv4_net": "198.18.0.0/15"}, {}, "no single inventory zone"),
        ("deny", {"ipv4_net": "10.0.0.1/32"}, {}, "no single inventory zone"),
        ("deny", {"ipv6_net": "198.18.10.11/32"}, {}, "IPv4 network"),
        ("deny", {"device": "tsc-9999"}, {}, "unknown device"),
        ("contain", {"zones": ["traffic", "energy"]}, {}, "action `deny`"),
        ("deny", {"zones": ["traffic", "traffic"]}, {}, "two different zones"),
        ("contain", {"zone": "traffic"}, {"alow": ["soc-mgmt"]}, "unknown args"),
        ("contain", {"zone": "traffic"}, {"cidrs": ["198.18.10.0/24"]}, "unknown args"),
        ("contain", {"zone": "traffic"}, {"allow": ["no-such-conduit"]}, "neither a CIDR"),
        ("contain", {"zone": "traffic"}, {"timeout_s": 0}, "positive integer"),
        ("contain", {"zone": "traffic"}, {"timeout_s": True}, "positive integer"),
    ],
)
def test_steps_outside_the_contract_are_refused_permanently(action, target, args, says):
    with pytest.raises(PermanentAdapterError, match=says):
        resolve(TOPOLOGY, action, target, args)


def test_a_zone_no_enforcement_point_guards_is_refused():
    unguarded = NetworkTopology(TOPOLOGY.zones, TOPOLOGY.devices, TOPOLOGY.conduits, ())
    with pytest.raises(PermanentAdapterError, match="no enforcement point guards zone"):
        resolve(unguarded, "contain", {"zone": "traffic"}, {})


# --- the rules -----------------------------------------------------------------------------


def test_isolation_only_drops_and_spares_flows_whose_other_end_is_allowlisted():
    selection = resolve(TOPOLOGY, "contain", {"zone": "traffic"}, {"allow": ["soc-mgmt"]})
    step = build(selection, "inc-1:isolate")
    rules = [c["add"]["rule"] for c in add_commands(step) if "rule" in c.get("add", {})]
    verdicts = {json.dumps(r["expr"][-1]) for r in rules}
    # An accept would end the chain and let the packet past later incidents' drops.
    assert verdicts == {'{"drop": null}'}
    assert {r["chain"] for r in rules} == {"input", "forward", "output"}
    texts = [json.dumps(r["expr"]) for r in rules]
    assert all(f"@{step.tag}_s4" in t and f"@{step.tag}_a4" in t and '"!="' in t for t in texts)
    assert len(rules) == 6  # both directions, three hooks


async def test_a_gateway_carries_forward_rules_only_and_this_host_all_three_hooks():
    inventory = Inventory(
        {
            **INVENTORY.data,
            "network": {
                "enforcement_points": {
                    "gw": {"endpoint": "netns:bt-x-gw", "zones": ["traffic"]},
                    "host": {"endpoint": "local", "zones": ["traffic"]},
                }
            },
        }
    )
    topology = inventory.network_topology(lab_gateway_netns="unused")
    assert {p.id: p.hooks for p in topology.points} == {
        "gw": ("forward",),
        "host": ("input", "forward", "output"),
    }
    adapter = NftablesAdapter(topology, nft=Nft(binary="/nonexistent/nft"))
    plan = await adapter.plan(command("contain", {"zone": "traffic"}))
    assert plan.after["rules"] == {"gw": 2, "host": 6}
    gateway_rules = [c for c in plan.changes if c.startswith("[gw") and "add rule" in c]
    chains = [c.split("add rule inet bulkhead ")[1].split()[0] for c in gateway_rules]
    assert chains == ["forward", "forward"]


def test_timeout_expires_the_drop_sets_but_never_the_allowlist():
    selection = resolve(
        TOPOLOGY, "contain", {"zone": "traffic"}, {"allow": ["soc-mgmt"], "timeout_s": 30}
    )
    step = build(selection, "inc-1:isolate")
    created = {
        c["create"]["set"]["name"]: c["create"]["set"] for c in add_commands(step) if "create" in c
    }
    assert created[f"{step.tag}_s4"]["flags"] == ["interval", "timeout"]
    assert created[f"{step.tag}_a4"]["flags"] == ["interval"]
    elements = [c["add"]["element"] for c in add_commands(step) if "element" in c.get("add", {})]
    timeouts = {e["name"]: e["elem"][0]["elem"].get("timeout") for e in elements}
    assert timeouts == {f"{step.tag}_s4": 30, f"{step.tag}_a4": None}


def test_sets_are_created_not_added_so_a_second_batch_of_the_same_key_fails_whole():
    step = build(resolve(TOPOLOGY, "deny", {"zones": ["traffic", "energy"]}, {}), "inc-1:c")
    verbs = [next(iter(c)) for c in add_commands(step)]
    assert verbs.count("create") == len(step.sets) == 2
    assert "delete" not in verbs


def test_each_key_gets_its_own_set_names_and_element_comments():
    one = build(resolve(TOPOLOGY, "contain", {"zone": "traffic"}, {}), "inc-1:isolate")
    two = build(resolve(TOPOLOGY, "contain", {"zone": "traffic"}, {}), "inc-2:isolate")
    assert one.tag == tag_of("inc-1:isolate") != two.tag
    assert not {s.name for s in one.sets} & {s.name for s in two.sets}
    element = next(c for c in add_commands(one) if "element" in c.get("add", {}))
    assert element["add"]["element"]["elem"][0]["elem"]["comment"] == "bulkhead inc-1:isolate"


def test_observe_reads_only_the_steps_own_sets_and_rules_and_removal_targets_them():
    step = build(resolve(TOPOLOGY, "contain", {"zone": "traffic"}, {}), "inc-1:isolate")
    other = build(resolve(TOPOLOGY, "contain", {"zone": "energy"}, {}), "inc-2:isolate")
    listing = [
        {
            "set": {
                "name": f"{step.tag}_s4",
                "elem": [
                    {"elem": {"val": {"prefix": {"addr": "198.18.10.0", "len": 24}}, "expires": 9}}
                ],
            }
        },
        {"set": {"name": f"{other.tag}_s4", "elem": ["198.18.20.10"]}},
        {
            "rule": {
                "chain": "forward",
                "handle": 7,
                "expr": [
                    {"match": {"op": "==", "right": f"@{step.tag}_s4"}},
                    {"counter": {"packets": 3, "bytes": 180}},
                    {"drop": None},
                ],
            }
        },
        {
            "rule": {
                "chain": "forward",
                "handle": 8,
                "expr": [{"match": {"op": "==", "right": f"@{other.tag}_s4"}}, {"drop": None}],
            }
        },
    ]
    seen = observe(listing, step.tag)
    assert seen.record() == {
        "present": True,
        "sets": {f"{step.tag}_s4": ["198.18.10.0/24"]},
        "rules": 1,
        "dropped_packets": 3,
        "expires_in_s": 9,
    }
    assert difference(seen, step.set_elements(), len(step.rules)) == "1 rules, expected 6"
    removal = remove_commands(seen)
    assert [next(iter(c["delete"])) for c in removal] == ["rule", "set"]
    assert removal[0]["delete"]["rule"]["handle"] == 7


def test_observe_accepts_ranges_and_bare_addresses_from_the_kernel():
    listing = [
        {
            "set": {
                "name": "bh_x_s4",
                "elem": [{"range": ["198.18.10.0", "198.18.11.255"]}, "198.18.20.1"],
            }
        }
    ]
    assert observe(listing, "bh_x").record()["sets"] == {
        "bh_x_s4": ["198.18.10.0/23", "198.18.20.1/32"]
    }


def test_observe_of_a_missing_table_is_absent():
    assert not observe(None, "bh_x").present


# --- the adapter without a usable nft ----------------------------------------------------


async def test_plan_shows_the_exact_rules_even_where_nft_is_missing(tmp_path):
    adapter = local_adapter(str(tmp_path / "no-such-nft"))
    plan = await adapter.plan(command("contain", {"zone": "traffic"}, {"allow": ["soc-mgmt"]}))
    tag = tag_of("inc-1:s1")
    assert plan.summary.startswith("isolate zone traffic (198.18.10.0/24) except 198.18.40.5/32")
    assert (
        f"[local-fw (this host)] add rule inet bulkhead forward ip saddr @{tag}_s4 "
        f'ip daddr != @{tag}_a4 counter drop comment "bulkhead inc-1:s1"'
    ) in plan.changes
    assert plan.before["points"]["local-fw"]["observed"] is False
    assert plan.after["sets"] == {f"{tag}_s4": ["198.18.10.0/24"], f"{tag}_a4": ["198.18.40.5/32"]}


async def test_apply_where_nft_is_missing_fails_permanently_saying_so(tmp_path):
    adapter = local_adapter(str(tmp_path / "no-such-nft"))
    step = command("contain", {"zone": "traffic"})
    with pytest.raises(
        PermanentAdapterError,
        match=r"local-fw .*nft is not installed \(Debian: apt-get install nftables\)",
    ):
        await adapter.apply(step, key=step.idempotency_key)
    caps = await adapter.capabilities()
    assert not caps.usable
    assert "not installed" in caps.detail


async def test_permission_refusal_is_permanent_and_names_root(tmp_path):
    binary = fake_nft(
        tmp_path, 'echo "Error: Could not process rule: Operation not permitted" >&2; exit 1'
    )
    adapter = local_adapter(binary)
    step = command("contain", {"zone": "traffic"})
    with pytest.raises(PermanentAdapterError, match="needs root or CAP_NET_ADMIN"):
        await adapter.apply(step, key=step.idempotency_key)
    assert "needs root" in (await adapter.capabilities()).detail


async def test_busy_kernel_is_transient(tmp_path):
    binary = fake_nft(tmp_path, 'echo "Error: Device or resource busy" >&2; exit 1')
    step = command("contain", {"zone": "traffic"})
    with pytest.raises(TransientAdapterError):
        await local_adapter(binary).apply(step, key=step.idempotency_key)


async def test_a_hung_nft_is_killed_at_the_deadline_and_is_transient(tmp_path):
    binary = fake_nft(tmp_path, "exec sleep 30")
    step = command("contain", {"zone": "traffic"})
    with pytest.raises(TransientAdapterError, match=r"did not answer within 0.2 s"):
        await local_adapter(binary, timeout_s=0.2).apply(step, key=step.idempotency_key)


async def test_a_syntax_refusal_is_permanent_with_nfts_own_words(tmp_path):
    binary = fake_nft(tmp_path, 'echo "Error: syntax error, unexpected junk" >&2; exit 1')
    step = command("contain", {"zone": "traffic"})
    with pytest.raises(PermanentAdapterError, match="unexpected junk"):
        await local_adapter(binary).apply(step, key=step.idempotency_key)
