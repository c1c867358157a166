"""The nftables adapter on a real city network: namespaces, veth, a gateway namespace as the
enforcement point, and TCP connections between zone hosts as the proof.

Needs root and `nft` (skipped with the reason otherwise); every test builds its own lab
under a fresh namespace prefix, removed on exit even when the test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from netlab import INVENTORY, adapter_for, city_network, needs_netlab, nft_at

from adapters.base import PermanentAdapterError
from adapters.network.nft import Nft
from adapters.network.nftables import NftablesAdapter
from adapters.network.topology import EnforcementPoint, NetworkTopology
from contracts.adapter import Receipt, StepCommand
from orchestrator.lab.network import CityNetwork

pytestmark = needs_netlab
BULKHEAD = str(Path(sys.executable).parent / "bulkhead")

TSC1, TSC2, TSC4 = "198.18.10.11", "198.18.10.12", "198.18.10.14"  # traffic
SCADA, RTU = "198.18.20.10", "198.18.20.11"  # energy
TRAM = "198.18.30.10"  # transit
SOC, LDAP, ENG_WS = "198.18.40.5", "198.18.40.10", "198.18.40.33"  # municipal-it
CAD = "198.18.50.10"  # dispatch; also the dispatch-preemption conduit
PROBE_TIMEOUT_S = 0.75  # the lab answers in well under a millisecond; a drop never does


@pytest.fixture
async def city():
    async with city_network() as network:
        yield network


def step(incident: str, action: str, target: dict, **args) -> StepCommand:
    return StepCommand(
        incident_id=incident,
        step_id=f"{action}:{json.dumps(target, sort_keys=True)}",
        adapter="nftables",
        action=action,
        target=target,
        args=args,
    )


async def reachable(city: CityNetwork, *pairs: tuple[str, str]) -> dict[tuple[str, str], bool]:
    """Which (source, destination) lab hosts complete a TCP exchange, probed concurrently."""
    answers = await asyncio.gather(
        *(city.connect(src, dst, timeout_s=PROBE_TIMEOUT_S) for src, dst in pairs)
    )
    return {pair: answer is not None for pair, answer in zip(pairs, answers, strict=True)}


def listing(city: CityNetwork) -> list[dict]:
    text = nft_at(city.gateway, "-j", "list", "table", "inet", "bulkhead")
    return [item for item in json.loads(text)["nftables"] if "metainfo" not in item]


async def apply(adapter: NftablesAdapter, command: StepCommand) -> Receipt:
    receipt = await adapter.apply(command, key=command.idempotency_key)
    verification = await adapter.verify(receipt)
    assert verification.ok, verification.detail
    return receipt


async def roll_back(adapter: NftablesAdapter, receipt: Receipt) -> None:
    undone = await adapter.rollback(receipt)
    verification = await adapter.verify(undone)
    assert verification.ok, verification.detail


async def test_zone_isolation_cuts_tcp_both_ways_keeps_conduits_and_rollback_restores(city):
    adapter = adapter_for(city)
    cut = [(SCADA, TSC1), (TSC1, SCADA), (ENG_WS, TSC2), (TSC2, TRAM)]
    kept = [(CAD, TSC4), (TSC4, CAD), (CAD, LDAP), (SCADA, LDAP)]
    assert all((await reachable(city, *cut, *kept)).values()), "lab must be open at the start"

    command = step("inc-a", "contain", {"zone": "traffic"}, allow=["dispatch-preemption"])
    receipt = await apply(adapter, command)
    during = await reachable(city, *cut, *kept)
    assert [during[p] for p in cut] == [False] * len(cut)
    assert [during[p] for p in kept] == [True] * len(kept)
    observed = (await adapter.verify(receipt)).observed["city-gw"]
    assert observed["dropped_packets"] > 0, "the drops must be this step's rules"

    await roll_back(adapter, receipt)
    assert all((await reachable(city, *cut, *kept)).values())
    assert listing(city) and not [i for i in listing(city) if "set" in i or "rule" in i]


async def test_applying_the_same_key_again_or_concurrently_leaves_one_copy(city):
    adapter = adapter_for(city)
    command = step("inc-a", "contain", {"zone": "traffic"})
    first = await apply(adapter, command)
    again = await asyncio.gather(
        *(adapter.apply(command, key=command.idempotency_key) for _ in range(3))
    )
    assert first.detail == "city-gw: added"
    assert {r.detail for r in again} == {"city-gw: already in place"}
    items = listing(city)
    assert len([i for i in items if "set" in i]) == 1
    assert len([i for i in items if "rule" in i]) == 2  # both directions, on forward


async def test_two_incidents_on_one_zone_keep_it_cut_until_both_roll_back(city):
    adapter = adapter_for(city)
    first = await apply(adapter, step("inc-a", "contain", {"zone": "traffic"}))
    second = await apply(adapter, step("inc-b", "contain", {"zone": "traffic"}))
    await roll_back(adapter, first)
    assert (await adapter.verify(second)).ok
    assert await reachable(city, (SCADA, TSC1)) == {(SCADA, TSC1): False}
    await roll_back(adapter, second)
    assert await reachable(city, (SCADA, TSC1)) == {(SCADA, TSC1): True}


async def test_concurrent_incidents_and_rolling_back_one_leaves_the_others(city):
    adapter = adapter_for(city)
    zone = step("inc-a", "contain", {"zone": "traffic"})
    host = step("inc-b", "deny", {"device": "scada-e01"})
    conduit = step("inc-c", "deny", {"zones": ["transit", "municipal-it"]})
    receipts = await asyncio.gather(*(apply(adapter, c) for c in (zone, host, conduit)))
    pairs = [(CAD, TSC1), (CAD, SCADA), (RTU, LDAP), (TRAM, LDAP), (LDAP, TRAM), (TRAM, CAD)]
    assert await reachable(city, *pairs) == {
        (CAD, TSC1): False,  # zone isolation
        (CAD, SCADA): False,  # host block: that address only...
        (RTU, LDAP): True,  # ...its zone neighbour still talks
        (TRAM, LDAP): False,  # conduit restriction, both directions...
        (LDAP, TRAM): False,
        (TRAM, CAD): True,  # ...and only between those two zones
    }
    await roll_back(adapter, receipts[0])
    for receipt in receipts[1:]:
        assert (await adapter.verify(receipt)).ok
    after = await reachable(city, (CAD, TSC1), (CAD, SCADA), (TRAM, LDAP))
    assert after == {(CAD, TSC1): True, (CAD, SCADA): False, (TRAM, LDAP): False}


async def test_steps_verified_together_share_listings_and_each_reads_its_own_back(
    city, monkeypatch
):
    """Twenty incidents isolating at once: each verify still proves its own sets and rules
    (a listing from before its apply would miss them), from a handful of table listings
    at the gateway instead of one each (adapters/network/listings.py)."""
    adapter = adapter_for(city)
    listings = 0
    list_now = adapter.nft._list_now

    async def counted(point: EnforcementPoint) -> list[dict] | None:
        nonlocal listings
        listings += 1
        return await list_now(point)

    monkeypatch.setattr(adapter.nft, "_list_now", counted)
    commands = [step(f"inc-{i}", "contain", {"zone": "traffic"}) for i in range(20)]
    receipts = await asyncio.gather(*(apply(adapter, c) for c in commands))
    assert listings <= 4, f"{listings} listings for 20 verifies"
    # Each verify saw its own step: rolled back one at a time, the others still verify.
    await roll_back(adapter, receipts[0])
    verifications = await asyncio.gather(*(adapter.verify(r) for r in receipts[1:]))
    assert all(v.ok for v in verifications)
    assert not (await adapter.verify(receipts[0])).ok, "a rolled-back step no longer verifies"


async def test_a_ruleset_someone_else_owns_is_left_untouched(city):
    # An operator's own table: a set, and a forward chain that explicitly accepts.
    nft_at(
        city.gateway,
        "-f",
        "-",
        stdin="""
        table inet operator {
            set trusted { type ipv4_addr; elements = { 198.18.10.11 } }
            chain forward {
                type filter hook forward priority -100; policy accept;
                ip saddr @trusted accept comment "operator: signal uplink"
            }
        }
        """,
    )
    theirs = nft_at(city.gateway, "-j", "list", "table", "inet", "operator")
    adapter = adapter_for(city)
    receipt = await apply(adapter, step("inc-a", "contain", {"zone": "traffic"}))
    # Their accept ends only their chain: our table still drops the packet.
    assert await reachable(city, (TSC1, SCADA)) == {(TSC1, SCADA): False}
    await roll_back(adapter, receipt)
    assert nft_at(city.gateway, "-j", "list", "table", "inet", "operator") == theirs


async def test_dead_mans_switch_reopens_the_zone_when_the_elements_time_out(city):
    adapter = adapter_for(city)
    receipt = await apply(adapter, step("inc-a", "contain", {"zone": "traffic"}, timeout_s=1))
    assert await reachable(city, (SCADA, TSC1)) == {(SCADA, TSC1): False}
    await asyncio.sleep(1.2)  # Bulkhead "died": nobody rolls back
    assert await reachable(city, (SCADA, TSC1)) == {(SCADA, TSC1): True}
    verification = await adapter.verify(receipt)
    assert not verification.ok
    assert "dead-man's switch fired" in verification.detail
    await roll_back(adapter, receipt)  # the leftover rules and empty set go too


async def test_verify_notices_a_rule_deleted_by_hand_and_apply_repairs_it(city):
    adapter = adapter_for(city)
    command = step("inc-a", "contain", {"zone": "traffic"})
    receipt = await apply(adapter, command)
    rules = [i["rule"] for i in listing(city) if "rule" in i]
    handle = next(r["handle"] for r in rules if r["chain"] == "forward")
    nft_at(city.gateway, "delete", "rule", "inet", "bulkhead", "forward", "handle", str(handle))
    broken = await adapter.verify(receipt)
    assert not broken.ok
    assert "1 rules, expected 2" in broken.detail
    repaired = await apply(adapter, command)
    assert repaired.detail == "city-gw: replaced"
    assert len([i for i in listing(city) if "rule" in i]) == 2


async def test_rollback_of_a_step_never_applied_is_a_noop(city):
    adapter = adapter_for(city)
    command = step("inc-never", "contain", {"zone": "traffic"})
    receipt = Receipt(
        adapter="nftables",
        key=command.idempotency_key,
        target=command.target,
        action=command.action,
        applied=True,
    )
    undone = await adapter.rollback(receipt)
    assert undone.detail == "nothing to undo"
    assert (await adapter.verify(undone)).ok


async def test_a_missing_enforcement_namespace_is_a_permanent_error_naming_it(city):
    topology = INVENTORY.network_topology(lab_gateway_netns=f"{city.prefix}nowhere")
    adapter = NftablesAdapter(topology, nft=Nft())
    command = step("inc-a", "contain", {"zone": "traffic"})
    with pytest.raises(PermanentAdapterError, match=r"nowhere' does not exist"):
        await adapter.apply(command, key=command.idempotency_key)
    assert "does not exist" in (await adapter.capabilities()).detail


async def test_a_step_that_fails_at_one_gateway_is_taken_back_at_the_others(city):
    # Two gateways guard the zone; the second namespace does not exist.
    good = INVENTORY.network_topology(lab_gateway_netns=city.gateway)
    broken = EnforcementPoint("backup-gw", f"{city.prefix}missing", frozenset({"traffic"}))
    topology = NetworkTopology(good.zones, good.devices, good.conduits, (*good.points, broken))
    adapter = NftablesAdapter(topology, nft=Nft())
    command = step("inc-a", "contain", {"zone": "traffic"})
    with pytest.raises(PermanentAdapterError, match="backup-gw"):
        await adapter.apply(command, key=command.idempotency_key)
    # Half a containment is neither contained nor normal: nothing stays at city-gw.
    assert not [i for i in listing(city) if "set" in i or "rule" in i]
    assert await reachable(city, (SCADA, TSC1)) == {(SCADA, TSC1): True}


async def test_capabilities_say_nft_is_usable_at_the_lab_gateway(city):
    caps = await adapter_for(city).capabilities()
    assert caps.usable, caps.detail
    assert caps.actions == ["contain", "deny"]
    assert f"city-gw (netns {city.gateway}): nft usable" in caps.detail


def test_adapters_check_prints_nftables_usable_while_the_lab_runs(city):
    # A subprocess, as an operator runs it (and so the CLI's logging setup stays its own).
    def check(prefix: str, *flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BULKHEAD, "adapters", "check", *flags],
            env={**os.environ, "BULKHEAD_LAB_NETNS_PREFIX": prefix},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    usable = check(city.prefix, "--json")
    assert usable.returncode == 0, usable.stdout + usable.stderr
    found = {c["adapter"]: c for c in json.loads(usable.stdout)}
    assert found["nftables"]["usable"] is True
    lab_down = check(f"{city.prefix}x")
    assert lab_down.returncode == 1
    assert "plan-only mode" in lab_down.stdout
