"""Lab traffic-signal controllers: a real Modbus TCP server (pymodbus) on loopback.

Each controller is one Modbus device id with a holding register that selects the signal
mode. The simulator counts every write per device so tests and drills can prove that a
containment step landed on the target exactly once, and lists the values in the order they
landed. Slow controllers for tests: `write_delay_s` holds every write (drills land a crash
in the middle of one); `land_late` makes the next writes to one unit land late, answered
late or acknowledged at once, released after a delay or when the test says.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

MODE_REGISTER = 0
MODE_NORMAL = 0
MODE_FLASH = 1
MODE_FIXED_TIME = 2
WRITE_FUNCTION_CODES = frozenset({6, 16, 23})
READ_FUNCTION_CODES = frozenset({3, 4})
REGISTER_COUNT = 8


@dataclass
class LateWrite:
    """When one held write lands: after `delay_s`, or once `release` is set if sooner."""

    delay_s: float | None
    release: asyncio.Event
    acknowledge_first: bool

    async def wait(self) -> None:
        if self.delay_s is None:
            await self.release.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.release.wait(), self.delay_s)


@dataclass
class TrafficLab:
    """A set of simulated traffic controllers behind one Modbus TCP listener."""

    host: str = "127.0.0.1"
    port: int = 15020
    device_ids: tuple[int, ...] = (1, 2, 3, 4)
    # Writes received, per (device id, register): counted on arrival, landed or not.
    writes: Counter[tuple[int, int]] = field(default_factory=Counter)
    # (device id, register, value) in the order the values were applied.
    landed: list[tuple[int, int, int]] = field(default_factory=list)
    # Register reads per device id: shows a client watching a point.
    reads: Counter[int] = field(default_factory=Counter)
    # Drills slow the controllers down so a crash can land in the middle of a write.
    write_delay_s: float = 0.0
    _late: dict[int, list[LateWrite]] = field(default_factory=dict)
    _holding: list[LateWrite] = field(default_factory=list)
    _in_flight: int = 0
    _deferred: set[asyncio.Task[None]] = field(default_factory=set)
    _server: ModbusTcpServer | None = None
    _task: asyncio.Task[None] | None = None

    def land_late(
        self,
        device_id: int,
        *,
        delay_s: float | None = None,
        count: int = 1,
        acknowledge_first: bool = False,
    ) -> asyncio.Event:
        """Make the next `count` writes to one unit land late: each is held until `delay_s`
        has passed or the returned event is set (no delay: only the event). The controller
        answers when the value lands (a slow controller: a client may time out first), or
        with `acknowledge_first` at once with exception 05 ACKNOWLEDGE ("accepted, this will
        take a while"), applying the value later (a controller queueing a mode change)."""
        release = asyncio.Event()
        late = LateWrite(delay_s, release, acknowledge_first)
        self._late.setdefault(device_id, []).extend([late] * count)
        return release

    @property
    def writes_in_flight(self) -> int:
        """Writes received and not applied yet: any of them may still land."""
        return self._in_flight

    async def _observe(  # noqa: PLR0917 - pymodbus fixes this callback signature
        self,
        device_id: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code in READ_FUNCTION_CODES:
            self.reads[device_id] += 1
        if set_values is None or function_code not in WRITE_FUNCTION_CODES:
            return None
        for offset in range(count):
            self.writes[(device_id, address + offset)] += 1
        values = [int(value) for value in set_values]
        queue = self._late.get(device_id)
        late = queue.pop(0) if queue else None
        if late is not None and late.acknowledge_first:
            # pymodbus applies nothing after an exception answer: the lab applies it later.
            offset = address - start_address
            self._in_flight += 1
            task = asyncio.create_task(
                self._land(
                    late,
                    device_id=device_id,
                    address=address,
                    values=values,
                    registers=current_registers,
                    offset=offset,
                )
            )
            self._deferred.add(task)
            task.add_done_callback(self._deferred.discard)
            return ExcCodes.ACKNOWLEDGE
        self._in_flight += 1
        try:
            if late is not None:
                self._holding.append(late)
                await late.wait()
            if self.write_delay_s:
                await asyncio.sleep(self.write_delay_s)
        finally:
            self._in_flight -= 1
        # pymodbus sets the registers as soon as this returns, with no await in between.
        self.landed.extend((device_id, address + i, value) for i, value in enumerate(values))
        return None

    async def _land(
        self,
        late: LateWrite,
        *,
        device_id: int,
        address: int,
        values: list[int],
        registers: list[int],
        offset: int,
    ) -> None:
        try:
            self._holding.append(late)
            await late.wait()
        finally:
            self._in_flight -= 1
        registers[offset : offset + len(values)] = values
        self.landed.extend((device_id, address + i, value) for i, value in enumerate(values))

    def _device(self, device_id: int) -> SimDevice:
        registers = SimData(
            0, count=REGISTER_COUNT, values=MODE_NORMAL, datatype=DataType.REGISTERS
        )
        return SimDevice(
            id=device_id,
            simdata=[registers],
            action=partial(self._observe, device_id),
        )

    async def start(self) -> None:
        self._server = ModbusTcpServer(
            [self._device(device_id) for device_id in self.device_ids],
            address=(self.host, self.port),
        )
        self._task = asyncio.create_task(self._server.serve_forever())
        # serve_forever binds asynchronously; wait until the socket accepts connections.
        for _ in range(100):
            try:
                _reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise RuntimeError(f"lab Modbus server did not listen on {self.host}:{self.port}")

    async def stop(self) -> None:
        # Held writes land now rather than hang past the test that held them.
        for late in self._holding:
            late.release.set()
        self._holding.clear()
        await asyncio.gather(*self._deferred, return_exceptions=True)
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._server = None
        self._task = None

    def write_count(self, device_id: int, register: int = MODE_REGISTER) -> int:
        return self.writes[(device_id, register)]

    async def read_mode(self, device_id: int) -> int:
        return await read_mode(self.host, self.port, device_id)


async def read_mode(host: str, port: int, device_id: int) -> int:
    """The controller's mode as any Modbus client sees it, over the wire."""
    client = AsyncModbusTcpClient(host, port=port, timeout=2, retries=0)
    if not await client.connect():
        raise ConnectionError(f"no Modbus server at {host}:{port}")
    try:
        response = await client.read_holding_registers(MODE_REGISTER, count=1, device_id=device_id)
        if response.isError():
            raise ConnectionError(f"unit {device_id} refused the read: {response}")
        return int(response.registers[0])
    finally:
        client.close()
