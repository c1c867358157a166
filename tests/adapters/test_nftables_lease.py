"""A step's lease on the firewall: `renew_lease` moves the dead-man's switch (the timeout of
the step's set elements) to a lease's new deadline, so an extended lease is also extended
where it is enforced. Proved on a namespace city with real TCP, against the kernel's own
`expires`; the pure parts and the refusals run without root.
"""

from __future__ import annotations

import asyncio
import json
import stat
import time
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest
from netlab import INVENTORY, adapter_for, city_network, needs_netlab, nft_at

from adapters.base import PermanentAdapterError, RenewsLease
from adapters.network.lease import DEADLINE_TOLERANCE_S, deadline_problem, seconds_until
from adapters.network.nft import Nft
from adapters.network.nftables import NftablesAdapter
from adapters.network.ruleset import Observed, renew_commands, tag_of
from adapters.network.topology import EnforcementPoint, NetworkTopology
from adapters.service.modbus import ModbusFallbackAdapter
from contracts.adapter import Receipt, StepCommand
from orchestrator.lab.network import CityNetwork

TSC1 = "198.18.10.11"  # traffic
SCADA = "198.18.20.10"  # energy
ENG_WS = "198.18.40.33"  # municipal-it: the workstation the shipped policy quarantines
CAD = "198.18.50.10"  # dispatch
SHORT_S = 6  # the applied switch: short, but nothing below is judged in a window this small
PROBE_TIMEOUT_S = 0.75  # the lab answers in well under a millisecond; a drop never does


def quarantine(incident: str, device: str, **args) -> StepCommand:
    return StepCommand(
        incident_id=incident,
        step_id=f"quarantine:{device}",
        adapter="nftables",
        action="contain",
        target={"device": device},
        args=args,
    )


def in_seconds(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def open_between(city: CityNetwork, src: str, dst: str) -> bool:
    return await city.connect(src, dst, timeout_s=PROBE_TIMEOUT_S) is not None


async def until(condition, *, within_s: float = 30.0, what: str) -> None:
    """Poll an async condition with a generous deadline (never a tight wall-clock window)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"not within {within_s} s: {what}")


def expires_of(city: CityNetwork, key: str) -> dict[str, list[int | None]]:
    """Seconds left of every element of the step's sets, as the kernel lists them."""
    text = nft_at(city.gateway, "-j", "list", "table", "inet", "bulkhead")
    sets = [i["set"] for i in json.loads(text)["nftables"] if "set" in i]
    return {
        s["name"]: [e["elem"].get("expires") if "elem" in e else None for e in s.get("elem", [])]
        for s in sets
        if s["name"].startswith(tag_of(key))
    }


async def applied(adapter: NftablesAdapter, command: StepCommand) -> Receipt:
    receipt = await adapter.apply(command, key=command.idempotency_key)
    verification = await adapter.verify(receipt)
    assert verification.ok, verification.detail
    return receipt


# --- on a namespace city -------------------------------------------------------------------


@needs_netlab
async def test_a_renewed_lease_keeps_the_host_cut_past_its_original_timeout():
    async with city_network() as city:
        adapter = adapter_for(city)
        started = time.monotonic()
        kept = await applied(adapter, quarantine("inc-a", "eng-ws-03", timeout_s=SHORT_S))
        # The control: the same switch, not renewed, must fire at the original time.
        control = await applied(adapter, quarantine("inc-b", "tsc-0001", timeout_s=SHORT_S))
        renewed = await adapter.renew_lease(kept, expires_at=in_seconds(60))

        async def control_reopened() -> bool:
            past = time.monotonic() - started >= SHORT_S + 4
            return past and await open_between(city, SCADA, TSC1)

        await until(control_reopened, what="the unrenewed step's switch fires")
        assert not await open_between(city, SCADA, ENG_WS)
        assert not await open_between(city, ENG_WS, CAD)
        assert await open_between(city, SCADA, CAD), "dispatch is no part of the step"
        left = [e for es in expires_of(city, kept.key).values() for e in es]
        assert left and all(e is not None and e > 30 for e in left), left
        assert (await adapter.verify(renewed)).ok
        assert not (await adapter.verify(control)).ok

        for receipt in (renewed, control):
            assert (await adapter.verify(await adapter.rollback(receipt))).ok
        assert await open_between(city, SCADA, ENG_WS)
        assert await open_between(city, ENG_WS, CAD)


@needs_netlab
async def test_renewing_twice_to_one_deadline_lands_on_it_and_never_times_the_allowlist():
    async with city_network() as city:
        adapter = adapter_for(city)
        zone = StepCommand(
            incident_id="inc-a",
            step_id="isolate:traffic",
            adapter="nftables",
            action="contain",
            target={"zone": "traffic"},
            args={"allow": ["dispatch-preemption"], "timeout_s": 30},
        )
        receipt = await applied(adapter, zone)
        deadline = in_seconds(600)
        first = await adapter.renew_lease(receipt, expires_at=deadline)
        again = await adapter.renew_lease(first, expires_at=deadline)

        assert first.after == again.after
        assert first.after["expires_at"] == deadline.isoformat()
        assert first.detail == f"city-gw: 1 set held until {deadline.isoformat()}"
        left = expires_of(city, zone.idempotency_key)
        tag = tag_of(zone.idempotency_key)
        assert [len(v) for v in left.values()] == [1, 1]  # one element each, no copies
        assert left[f"{tag}_a4"] == [None], "the allowlist never expires"
        assert 600 - 2 * DEADLINE_TOLERANCE_S <= left[f"{tag}_s4"][0] <= 600
        assert (await adapter.verify(again)).ok
        assert not await open_between(city, SCADA, TSC1)
        assert await open_between(city, CAD, TSC1), "the pre-emption conduit stays open"


@needs_netlab
async def test_renewal_brings_back_a_step_whose_switch_already_fired():
    async with city_network() as city:
        adapter = adapter_for(city)
        receipt = await applied(adapter, quarantine("inc-a", "tsc-0001", timeout_s=1))

        async def reopened() -> bool:
            return await open_between(city, SCADA, TSC1)

        await until(reopened, what="the one-second switch fires")
        renewed = await adapter.renew_lease(receipt, expires_at=in_seconds(60))
        assert "had timed out: back in force" in renewed.detail
        assert not await open_between(city, SCADA, TSC1)
        assert (await adapter.verify(renewed)).ok
        await adapter.rollback(renewed)
        assert await open_between(city, SCADA, TSC1)


@needs_netlab
async def test_renewing_a_rolled_back_step_never_brings_it_back():
    async with city_network() as city:
        adapter = adapter_for(city)
        receipt = await applied(adapter, quarantine("inc-a", "tsc-0001", timeout_s=30))
        released = await adapter.rollback(receipt)

        # A stale receipt (the renewal raced the release): refused, the step stays gone.
        with pytest.raises(PermanentAdapterError, match="is not in place"):
            await adapter.renew_lease(receipt, expires_at=in_seconds(60))
        assert await adapter.renew_lease(released, expires_at=in_seconds(60)) == released
        assert expires_of(city, receipt.key) == {}
        assert await open_between(city, SCADA, TSC1)


@needs_netlab
async def test_verify_of_a_renewed_step_notices_the_deadline_moved_back_by_hand():
    async with city_network() as city:
        adapter = adapter_for(city)
        receipt = await applied(adapter, quarantine("inc-a", "tsc-0001", timeout_s=30))
        renewed = await adapter.renew_lease(receipt, expires_at=in_seconds(600))
        # Someone (an old worker, a script) puts the element back with a short timeout.
        name = f"{tag_of(receipt.key)}_s4"
        nft_at(
            city.gateway,
            "-f",
            "-",
            stdin=f"flush set inet bulkhead {name}\n"
            f"add element inet bulkhead {name} {{ {TSC1} timeout 120s }}\n",
        )
        drifted = await adapter.verify(renewed)
        assert not drifted.ok
        assert "elements expire in" in drifted.detail
        repaired = await adapter.renew_lease(renewed, expires_at=in_seconds(600))
        assert (await adapter.verify(repaired)).ok


# --- without root ------------------------------------------------------------------------


def untouchable_adapter(tmp_path: Path) -> tuple[NftablesAdapter, Path]:
    """An adapter whose `nft` leaves a mark if it is ever run (and then fails)."""
    mark = tmp_path / "nft-ran"
    binary = tmp_path / "nft"
    binary.write_text(f"#!/bin/sh\ntouch {mark}\nexit 1\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    topology = INVENTORY.network_topology(lab_gateway_netns="unused")
    point = EnforcementPoint("local-fw", None, frozenset(topology.zones))
    local = NetworkTopology(topology.zones, topology.devices, topology.conduits, (point,))
    return NftablesAdapter(local, nft=Nft(binary=str(binary))), mark


def receipt_with(timeout_s: int | None, *, applied: bool = True) -> Receipt:
    return Receipt(
        adapter="nftables",
        key="inc-a:quarantine:tsc-0001",
        target={"device": "tsc-0001"},
        action="contain",
        applied=applied,
        after={
            "sets": {f"{tag_of('inc-a:quarantine:tsc-0001')}_s4": [f"{TSC1}/32"]},
            "points": [{"id": "local-fw", "netns": None, "hooks": ["forward"]}],
            "timeout_s": timeout_s,
        },
    )


async def test_a_step_without_a_switch_or_rolled_back_has_no_deadline_to_move(tmp_path):
    adapter, mark = untouchable_adapter(tmp_path)
    for receipt in (receipt_with(None), receipt_with(30, applied=False)):
        assert await adapter.renew_lease(receipt, expires_at=in_seconds(60)) is receipt
    assert not mark.exists(), "nft must not run"


@pytest.mark.parametrize(
    ("deadline", "says"),
    [
        (in_seconds(-1), "has already passed"),
        (datetime.now() + timedelta(hours=1), "has no time zone"),  # naive on purpose
    ],
)
async def test_a_deadline_that_is_past_or_without_zone_is_refused_before_nft_runs(
    tmp_path, deadline, says
):
    adapter, mark = untouchable_adapter(tmp_path)
    with pytest.raises(PermanentAdapterError, match=says):
        await adapter.renew_lease(receipt_with(30), expires_at=deadline)
    assert not mark.exists()


def test_the_nftables_adapter_renews_leases_and_a_modbus_one_has_none(tmp_path):
    adapter, _ = untouchable_adapter(tmp_path)
    assert isinstance(adapter, RenewsLease)
    assert not isinstance(ModbusFallbackAdapter({}), RenewsLease)


def test_the_timeout_is_rounded_up_so_the_target_never_lets_go_first():
    deadline = datetime(2030, 1, 1, tzinfo=UTC)
    assert seconds_until(deadline, deadline.timestamp() - 59.2) == 60
    assert seconds_until(deadline, deadline.timestamp() - 60) == 60


def test_a_renewal_is_one_batch_flushing_then_refilling_each_expiring_set():
    commands = renew_commands({"bh_x_s4": ["198.18.10.0/25", "198.18.10.128/25"]}, "inc:s", 90)
    assert [next(iter(c)) for c in commands] == ["flush", "add"]
    (elem,) = commands[1]["add"]["element"]["elem"]
    assert elem["elem"] == {
        "val": {"prefix": {"addr": "198.18.10.0", "len": 24}},
        "comment": "bulkhead inc:s",
        "timeout": 90,
    }


def test_a_listing_whose_elements_expire_at_the_old_time_is_not_the_new_deadline():
    now = time.time()
    deadline = datetime.fromtimestamp(now + 60, UTC)
    elements = {"s": [f"{TSC1}/32"]}

    def problem(left: int | None) -> str | None:
        listed = Observed(
            table=True, sets={"s": (ip_network(f"{TSC1}/32"),)}, rules=(), expiring={"s": (left,)}
        )
        return deadline_problem(listed, elements, deadline, listed_between=(now, now))

    assert problem(5) == "set s: elements expire in 5 s, the lease in 60 s"
    assert problem(None) == "set s: elements expire in never, the lease in 60 s"
    assert problem(59) is None
