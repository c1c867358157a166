"""Lab traffic-signal controllers: a real Modbus TCP server (pymodbus) on loopback.

Each controller is one Modbus device id with a holding register that selects the signal
mode. The simulator counts every write per device so tests and drills can prove that a
containment step landed on the target exactly once.
"""

from __future__ import annotations

import asyncio
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
REGISTER_COUNT = 8


@dataclass
class TrafficLab:
    """A set of simulated traffic controllers behind one Modbus TCP listener."""

    host: str = "127.0.0.1"
    port: int = 15020
    device_ids: tuple[int, ...] = (1, 2, 3, 4)
    writes: Counter[tuple[int, int]] = field(default_factory=Counter)
    # Drills slow the controllers down so a crash can land in the middle of a write.
    write_delay_s: float = 0.0
    _server: ModbusTcpServer | None = None
    _task: asyncio.Task[None] | None = None

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
        del start_address, current_registers
        if set_values is not None and function_code in WRITE_FUNCTION_CODES:
            for offset in range(count):
                self.writes[(device_id, address + offset)] += 1
            if self.write_delay_s:
                await asyncio.sleep(self.write_delay_s)
        return None

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
