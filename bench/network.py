"""Network isolation: the nftables adapter's apply+verify of a zone isolation at the lab
gateway, next to a bare `nft -j -f -` of the very same rules, in the same run.

Also how it grows: N incidents (1, 10, 100) applying and verifying concurrently, next to N
concurrent bare nft calls; and one apply+verify while N incidents already hold state (the
table every verify reads back grows with them). Needs root and nft; prints a JSON object
with `skipped` otherwise. Usage:
    .venv/bin/python bench/network.py [--samples 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, machine, percentiles_ms

from adapters.network.nft import Nft
from adapters.network.nftables import NftablesAdapter
from adapters.network.ruleset import add_commands, batch, build
from contracts.adapter import Receipt, StepCommand
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.lab.network import CityNetwork, unavailable
from orchestrator.wiring.inventory import Inventory

GROWTH = (1, 10, 100)


def isolation(index: int) -> StepCommand:
    return StepCommand(
        incident_id=f"bench-{index}",
        step_id="isolate:traffic",
        adapter="nftables",
        action="contain",
        target={"zone": "traffic"},
        args={"allow": ["dispatch-preemption"], "timeout_s": 3600},
    )


class Bench:
    def __init__(self, city: CityNetwork, inventory: Inventory) -> None:
        self.city = city
        topology = inventory.network_topology(lab_gateway_netns=city.gateway)
        self.adapter = NftablesAdapter(topology, nft=Nft(timeout_s=30))
        self.serial = 0

    def next_command(self) -> StepCommand:
        self.serial += 1
        return isolation(self.serial)

    async def adapter_once(self, command: StepCommand) -> float:
        started = time.perf_counter()
        receipt = await self.adapter.apply(command, key=command.idempotency_key)
        verification = await self.adapter.verify(receipt)
        elapsed = time.perf_counter() - started
        assert verification.ok, verification.detail
        return elapsed

    async def _bare_nft(self, *args: str, stdin: bytes | None = None) -> None:
        process = await asyncio.create_subprocess_exec(
            *["ip", "netns", "exec", self.city.gateway, "nft", "-j", *args],
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate(stdin)
        assert process.returncode == 0, err.decode()

    def _payload(self, command: StepCommand) -> bytes:
        """The very JSON batch the adapter sends for this command (table already there)."""
        selection = self.adapter._resolve(command)
        (point,) = selection.points
        step = build(selection, command.idempotency_key).at(point.hooks)
        return json.dumps(batch(add_commands(step))).encode()

    async def bare_once(self, command: StepCommand) -> float:
        """The same rules piped to nft by hand: one call, no read-back."""
        payload = self._payload(command)
        started = time.perf_counter()
        await self._bare_nft("-f", "-", stdin=payload)
        return time.perf_counter() - started

    async def bare_with_read_back(self, command: StepCommand) -> float:
        """By hand, what the adapter does: the batch, then `list table` to see it landed."""
        payload = self._payload(command)
        started = time.perf_counter()
        await self._bare_nft("-f", "-", stdin=payload)
        await self._bare_nft("list", "table", "inet", "bulkhead")
        return time.perf_counter() - started

    async def undo(self, command: StepCommand) -> None:
        """Untimed, after every sample: the step goes, the table and chains stay (as they
        do in service). Deleting a set waits out an RCU grace period; it is not measured."""
        await self.adapter.rollback(
            Receipt(
                adapter="nftables",
                key=command.idempotency_key,
                target=command.target,
                action=command.action,
                applied=True,
            )
        )

    async def reset(self) -> None:
        """Untimed: the whole table goes (after a batch of concurrent incidents)."""
        process = await asyncio.create_subprocess_exec(
            *["ip", "netns", "exec", self.city.gateway, "nft", "delete", "table", "inet"],
            "bulkhead",
            stderr=asyncio.subprocess.DEVNULL,
        )
        await process.wait()
        await self.prime()

    async def prime(self) -> None:
        """The table and chains exist before anything is timed: steady state."""
        command = self.next_command()
        await self.adapter.apply(command, key=command.idempotency_key)
        await self.undo(command)

    async def sequential(self, samples: int) -> dict[str, list[float]]:
        # Interleaved, so drift on a noisy machine hits every series alike.
        series: dict[str, list[float]] = {"adapter": [], "bare": [], "bare_read_back": []}
        calls = {
            "adapter": self.adapter_once,
            "bare": self.bare_once,
            "bare_read_back": self.bare_with_read_back,
        }
        for _ in range(samples):
            for name, call in calls.items():
                command = self.next_command()
                series[name].append(await call(command))
                await self.undo(command)
        return series

    async def concurrent(self, n: int, rounds: int) -> dict[str, Any]:
        walls: dict[str, list[float]] = {"adapter": [], "bare": []}
        for _ in range(rounds):
            for kind in ("adapter", "bare"):
                calls = self.adapter_once if kind == "adapter" else self.bare_once
                commands = [self.next_command() for _ in range(n)]
                started = time.perf_counter()
                await asyncio.gather(*(calls(c) for c in commands))
                walls[kind].append(time.perf_counter() - started)
                await self.reset()
        adapter_ms = statistics.median(walls["adapter"]) * 1000
        bare_ms = statistics.median(walls["bare"]) * 1000
        return {
            "incidents": n,
            "adapter_wall_ms": round(adapter_ms, 2),
            "adapter_per_incident_ms": round(adapter_ms / n, 2),
            "bare_nft_wall_ms": round(bare_ms, 2),
            "bare_nft_per_incident_ms": round(bare_ms / n, 2),
            "wall_vs_bare": round(adapter_ms / bare_ms, 2),
        }

    async def with_held(self, held: int, samples: int) -> dict[str, Any]:
        """One isolation's apply+verify while `held` other incidents hold their state.

        Samples accumulate (held grows by `samples`) instead of being rolled back: deleting
        a set waits for an RCU grace period in the kernel, which would land in the next
        timed sample and measure rollback instead.
        """
        await asyncio.gather(
            *(
                self.adapter.apply(c, key=c.idempotency_key)
                for c in (self.next_command() for _ in range(held))
            )
        )
        timings = [await self.adapter_once(self.next_command()) for _ in range(samples)]
        await self.reset()
        return {"held": held, **percentiles_ms(timings)}


async def main(samples: int, rounds: int) -> None:
    reason = unavailable()
    if reason is None and Nft().installed() is not None:
        reason = Nft().installed()
    if reason is not None:
        emit({"bench": "network", "machine": machine(), "skipped": reason})
        return
    inventory = Inventory.load(DEFAULT_POLICY_DIR)
    city = CityNetwork.from_inventory(inventory, prefix=f"bb{uuid.uuid4().hex[:6]}-")
    async with city:
        bench = Bench(city, inventory)
        await bench.prime()
        await bench.sequential(max(5, samples // 20))  # warm caches and the page cache
        series = await bench.sequential(samples)
        adapter, bare = percentiles_ms(series["adapter"]), percentiles_ms(series["bare"])
        read_back = percentiles_ms(series["bare_read_back"])
        growth = [
            await bench.concurrent(n, rounds if n < 100 else max(1, rounds // 2)) for n in GROWTH
        ]
        held = [await bench.with_held(n, max(5, samples // 10)) for n in (0, *GROWTH[1:])]
    per_incident = [g["adapter_per_incident_ms"] for g in growth]
    emit(
        {
            "bench": "network",
            "machine": machine(),
            "method": "zone isolation (traffic, 1 allowlisted conduit: 2 rules on forward, 2 "
            "sets) at the lab gateway namespace; adapter = apply (one atomic batch) + verify (read "
            "the table back); bare = the same JSON batch piped to `ip netns exec gw nft -j "
            "-f -` (then_list: followed by `nft -j list table`); samples interleaved; table "
            "and chains exist (steady state), each sample's step removed untimed",
            "adapter_apply_verify": adapter,
            "bare_nft_same_rules": bare,
            "p50_vs_bare": round(adapter["p50_ms"] / bare["p50_ms"], 2),
            "p99_vs_bare": round(adapter["p99_ms"] / bare["p99_ms"], 2),
            # Verify must read the table back: a second nft call the bare apply never makes.
            "bare_nft_same_rules_then_list": read_back,
            "p50_vs_bare_then_list": round(adapter["p50_ms"] / read_back["p50_ms"], 2),
            "concurrent_incidents": growth,
            # Linear or better: per-incident cost should not rise with N.
            "per_incident_ms_growth_1_to_100": round(per_incident[-1] / per_incident[0], 2),
            "one_isolation_while_others_held": held,
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.samples, arguments.rounds))
