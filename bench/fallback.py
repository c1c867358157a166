"""Service fallback: each adapter's apply+verify next to the bare client call, same run.

For modbus (pymodbus), opcua (asyncua) and http (httpx) against the lab simulators on
loopback, every sample switches the target to the other of two modes, so every apply
really writes. Series, interleaved so drift on a noisy machine hits them alike:
- adapter_apply_verify: the adapter with keep_connections=True (what a worker runs);
- adapter_apply_verify_per_call: the default, a connection per call;
- bare_write: one raw write on an already-connected client (the reference);
- bare_read_write_read: by hand, the three round trips apply+verify must make (read
  for idempotency and the rollback value, write, read back), on the same client.
Usage:
    .venv/bin/python bench/fallback.py [--iterations 200]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import httpx
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from pymodbus.client import AsyncModbusTcpClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, free_port, machine, percentiles_ms

from adapters.secrets import SecretRef
from adapters.service.http import HttpCall, HttpFallbackAdapter, HttpSwitch, SecretHeader
from adapters.service.modbus import ModbusDevice, ModbusFallbackAdapter
from adapters.service.opcua import OpcUaFallbackAdapter, OpcUaNode
from contracts.adapter import StepCommand
from orchestrator.lab.cityservice import CityServiceLab
from orchestrator.lab.substation import SubstationLab, node_id
from orchestrator.lab.traffic import MODE_REGISTER, TrafficLab

TOKEN_ENV = "BULKHEAD_BENCH_TRAM_TOKEN"  # noqa: S105 - the name of a variable
Adapter = ModbusFallbackAdapter | OpcUaFallbackAdapter | HttpFallbackAdapter


class Target:
    """One fallback target: its adapters, two modes to toggle, and a bare client."""

    name: str
    asset: str
    modes: tuple[str, str]
    wire: ClassVar[dict[str, Any]]

    def __init__(self) -> None:
        self.current = 0  # index into modes: every timed operation flips it

    def next_mode(self) -> str:
        self.current = 1 - self.current
        return self.modes[self.current]

    def adapter(self, *, keep: bool) -> Adapter:
        raise NotImplementedError

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def write(self, value: Any) -> None:
        raise NotImplementedError

    async def read(self) -> Any:
        raise NotImplementedError


class ModbusTarget(Target):
    name, asset, modes = "modbus", "tsc-0001", ("normal", "flash")
    wire: ClassVar[dict[str, Any]] = {"normal": 0, "flash": 1}

    def __init__(self, lab: TrafficLab) -> None:
        super().__init__()
        self.lab = lab
        self.client = AsyncModbusTcpClient(lab.host, port=lab.port, retries=0, reconnect_delay=0)

    def adapter(self, *, keep: bool) -> Adapter:
        device = ModbusDevice(self.asset, self.lab.host, self.lab.port, 1, MODE_REGISTER, self.wire)
        return ModbusFallbackAdapter({self.asset: device}, keep_connections=keep)

    async def open(self) -> None:
        await self.client.connect()

    async def close(self) -> None:
        self.client.close()

    async def write(self, value: Any) -> None:
        await self.client.write_register(MODE_REGISTER, value, device_id=1)

    async def read(self) -> Any:
        return await self.client.read_holding_registers(MODE_REGISTER, count=1, device_id=1)


class OpcUaTarget(Target):
    name, asset, modes = "opcua", "rtu-e01", ("remote", "local_manual")
    wire: ClassVar[dict[str, Any]] = {"remote": 0, "local_manual": 1}

    def __init__(self, lab: SubstationLab) -> None:
        super().__init__()
        self.lab = lab
        self.client = Client(lab.endpoint, timeout=2)
        self.node = self.client.get_node(node_id("North"))

    def adapter(self, *, keep: bool) -> Adapter:
        node = OpcUaNode(self.asset, self.lab.endpoint, node_id("North"), self.wire)
        return OpcUaFallbackAdapter({self.asset: node}, keep_connections=keep)

    async def open(self) -> None:
        await self.client.connect()

    async def close(self) -> None:
        await self.client.disconnect()

    async def write(self, value: Any) -> None:
        variant = ua.Variant(value, ua.VariantType.Int32)
        await self.node.write_attribute(AttributeIds.Value, ua.DataValue(variant))

    async def read(self) -> Any:
        return await self.node.read_attributes([AttributeIds.Value])


class HttpTarget(Target):
    name, asset, modes = "http", "tram-ops-01", ("normal", "degraded")
    wire: ClassVar[dict[str, Any]] = {"normal": "normal", "degraded": "degraded"}

    def __init__(self, lab: CityServiceLab) -> None:
        super().__init__()
        self.lab = lab
        self.client = httpx.AsyncClient(base_url=lab.url, trust_env=False)
        self.auth = {"Authorization": f"Bearer {lab.token}"}

    def adapter(self, *, keep: bool) -> Adapter:
        url = f"{self.lab.url}/tram/mode"
        switch = HttpSwitch(
            asset=self.asset,
            modes=self.wire,
            read=HttpCall("GET", url, path="mode"),
            apply=HttpCall("PUT", url, body={"mode": "{mode}"}),
            headers={"Authorization": SecretHeader(SecretRef(env=TOKEN_ENV), "Bearer ")},
        )
        return HttpFallbackAdapter({self.asset: switch}, keep_connections=keep)

    async def open(self) -> None:
        await self.read()  # the connection is open before anything is timed

    async def close(self) -> None:
        await self.client.aclose()

    async def write(self, value: Any) -> None:
        response = await self.client.put("/tram/mode", json={"mode": value}, headers=self.auth)
        response.raise_for_status()

    async def read(self) -> Any:
        return (await self.client.get("/tram/mode")).json()


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


class Series:
    def __init__(self, target: Target, kept: Adapter, per_call: Adapter) -> None:
        self.target = target
        self.adapters = {"adapter_apply_verify": kept, "adapter_apply_verify_per_call": per_call}
        self.samples: dict[str, list[float]] = {
            name: [] for name in (*self.adapters, "bare_write", "bare_read_write_read")
        }

    async def adapter_once(self, adapter: Adapter) -> None:
        mode = self.target.next_mode()
        command = StepCommand(
            incident_id="bench",
            step_id=f"fallback-{mode}",
            adapter=adapter.name,
            action="set",
            target={"asset": self.target.asset},
            args={"mode": mode},
        )
        receipt = await adapter.apply(command, key=command.idempotency_key)
        verification = await adapter.verify(receipt)
        assert receipt.detail in {"written", "sent"}, receipt.detail
        assert verification.ok, verification.detail

    async def bare_write(self) -> None:
        await self.target.write(self.target.wire[self.target.next_mode()])

    async def bare_read_write_read(self) -> None:
        await self.target.read()
        await self.target.write(self.target.wire[self.target.next_mode()])
        await self.target.read()

    async def round(self, *, record: bool = True) -> None:
        durations: dict[str, float] = {}
        for name, adapter in self.adapters.items():
            durations[name] = await timed(functools.partial(self.adapter_once, adapter))
        durations["bare_write"] = await timed(self.bare_write)
        durations["bare_read_write_read"] = await timed(self.bare_read_write_read)
        if record:
            for name, seconds in durations.items():
                self.samples[name].append(seconds)

    def result(self) -> dict[str, Any]:
        stats = {name: percentiles_ms(samples) for name, samples in self.samples.items()}
        kept, bare = stats["adapter_apply_verify"], stats["bare_write"]
        same_work = stats["bare_read_write_read"]
        per_call = stats["adapter_apply_verify_per_call"]
        return {
            **stats,
            "p50_vs_bare_write": round(kept["p50_ms"] / bare["p50_ms"], 2),
            "p99_vs_bare_write": round(kept["p99_ms"] / bare["p99_ms"], 2),
            "p50_vs_bare_read_write_read": round(kept["p50_ms"] / same_work["p50_ms"], 2),
            "per_call_p50_vs_bare_write": round(per_call["p50_ms"] / bare["p50_ms"], 2),
        }


async def start_labs() -> tuple[TrafficLab, SubstationLab, CityServiceLab, dict[str, float]]:
    traffic = TrafficLab(port=free_port())
    substation = SubstationLab(port=free_port())
    city = CityServiceLab(port=free_port())
    startup: dict[str, float] = {}
    for name, lab in (("modbus", traffic), ("opcua", substation), ("http", city)):
        startup[name] = round(await timed(lab.start) * 1000, 1)
    return traffic, substation, city, startup


async def main(iterations: int) -> None:
    traffic, substation, city, startup = await start_labs()
    os.environ[TOKEN_ENV] = city.token  # the adapter reads its token as a worker would
    targets: list[Target] = [ModbusTarget(traffic), OpcUaTarget(substation), HttpTarget(city)]
    results: dict[str, Any] = {}
    try:
        for target in targets:
            await target.open()
            kept, per_call = target.adapter(keep=True), target.adapter(keep=False)
            series = Series(target, kept, per_call)
            try:
                for _ in range(max(5, iterations // 10)):  # warm connections and caches
                    await series.round(record=False)
                for _ in range(iterations):
                    await series.round()
            finally:
                await kept.aclose()
                await target.close()
            results[target.name] = series.result()
    finally:
        await city.stop()
        await substation.stop()
        await traffic.stop()
    emit(
        {
            "bench": "fallback",
            "machine": machine(),
            "iterations": iterations,
            "method": "lab simulators in-process on loopback; each sample toggles between two "
            "modes so apply really writes; adapter = apply (read, write) + verify (read); "
            "bare_write = one raw write on a connected client; bare_read_write_read = the "
            "same three round trips by hand; series interleaved",
            "lab_startup_ms": startup,
            **results,
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=200)
    arguments = parser.parse_args()
    # The libraries narrate sessions and plaintext endpoints at WARNING; stdout is JSON.
    for noisy in ("asyncua", "pymodbus", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    asyncio.run(main(arguments.iterations))
