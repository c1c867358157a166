"""The lab's city network: zones from the inventory in namespaces behind one gateway, every
host answering TCP, and nothing left behind when a run ends, however it ends."""

from __future__ import annotations

import asyncio
import itertools
from ipaddress import IPv4Network

import pytest
from netlab import INVENTORY, city_network, needs_netlab, new_prefix

from orchestrator.config import Settings
from orchestrator.lab import network as lab_network
from orchestrator.lab.network import LAB_RANGE, NETNS_DIR, CityNetwork, LabZone, lab_zones


def test_lab_zones_are_the_inventory_zones_inside_198_18_0_0_15():
    zones = {z.name: z for z in lab_zones(INVENTORY)}
    assert {"traffic", "energy", "dispatch"} <= set(zones)
    assert all(h.ip in LAB_RANGE for z in zones.values() for h in z.hosts)
    assert "tsc-0001" in {h.name for h in zones["traffic"].hosts}
    # A management conduit's host is part of the lab, so the allowlist can be exercised.
    assert "conduit:soc-mgmt" in {h.name for h in zones["municipal-it"].hosts}
    assert [str(a) for a in zones["traffic"].gateways] == ["198.18.10.1"]


def test_addresses_outside_the_benchmarking_range_are_refused():
    with pytest.raises(ValueError, match=r"outside 198\.18\.0\.0/15"):
        CityNetwork([LabZone("office", (IPv4Network("10.0.0.0/24"),), ())])


async def test_without_root_the_lab_says_network_steps_run_plan_only(monkeypatch):
    monkeypatch.setattr(lab_network.os, "geteuid", lambda: 1000)
    network, line = await lab_network.start_city_lab(Settings(lab_netns_prefix="btnever-"))
    assert network is None
    assert line == (
        "off: the network lab needs root (network namespaces, veth); "
        "network steps run in plan-only mode"
    )


@needs_netlab
async def test_every_zone_reaches_every_other_through_the_gateway():
    async with city_network() as city:
        one_per_zone = [str(zone.hosts[0].ip) for zone in city.zones if zone.hosts]
        pairs = list(itertools.permutations(one_per_zone, 2))
        answers = await asyncio.gather(*(city.connect(s, d) for s, d in pairs))
        assert await city.connect("198.18.20.10", "198.18.10.11") == "tsc-0001 198.18.10.11"
    assert len(pairs) >= 6
    assert all(answers), dict(zip(pairs, answers, strict=True))


@needs_netlab
async def test_namespaces_are_removed_even_when_the_test_body_fails():
    names: list[str] = []
    with pytest.raises(RuntimeError, match="test failed"):
        async with city_network() as city:
            names = city.namespaces
            assert all((NETNS_DIR / n).exists() for n in names)
            raise RuntimeError("test failed")
    assert names
    assert not [n for n in names if (NETNS_DIR / n).exists()]


@needs_netlab
async def test_a_second_lab_with_the_same_prefix_is_refused_and_the_first_keeps_running():
    prefix = new_prefix()
    async with CityNetwork.from_inventory(INVENTORY, prefix=prefix) as first:
        second = CityNetwork.from_inventory(INVENTORY, prefix=prefix)
        with pytest.raises(RuntimeError, match="another process runs the network lab"):
            await second.start()
        await second.stop()  # must not remove what the first one owns
        assert await first.connect("198.18.50.10", "198.18.40.10") == "ldap-01 198.18.40.10"
