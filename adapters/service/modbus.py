"""Service fallback over Modbus TCP: switch a controller's mode register to a safe mode.

Apply writes the safe value only when the register does not already hold it, so a retried
apply after a crash writes nothing twice. Verify reads the register back from the device.
Plan, receipts, connection keeping and the late-write fence are shared with the other mode
switches (`adapters.service.modes`); `keep_connections=True` keeps one client per host:port.

A write that outlasts the timeout (settle reasoning for Modbus TCP): the connection is cut
by a reset (SO_LINGER 0), which drops even bytes still in our send buffer where a plain
close would deliver them; after that nothing of ours can reach the device over it. A
request the device already received may still be executed, though: Modbus has no way to
cancel it. The adapter therefore re-reads the register until the written value
shows or `settle_s` has passed, the longest the device type may take to act on a request
it received (a controller applying a mode change at the end of a cycle needs more than
its scan time). A device that answers exception 05 ACKNOWLEDGE ("accepted, will take a
while") or a gateway answering 0B ("no response from the target") leaves the write in
the same doubt; 06 DEVICE BUSY and 0A GATEWAY PATH UNAVAILABLE say it was not applied.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.service.modes import (
    DEFAULT_SETTLE_S,
    ModeSwitchAdapter,
    ModeTable,
    WriteRefusedError,
)

# Exception responses that say "not now" rather than "never": busy device, or a gateway
# that could not reach it. Everything else (illegal address, value...) is permanent.
_TRANSIENT_EXCEPTION_CODES = frozenset(
    {
        ExcCodes.ACKNOWLEDGE,
        ExcCodes.DEVICE_BUSY,
        ExcCodes.GATEWAY_PATH_UNAVIABLE,
        ExcCodes.GATEWAY_NO_RESPONSE,
    }
)
# Of those, the answers to a write that say the device did not (and will not) apply it;
# after ACKNOWLEDGE or GATEWAY_NO_RESPONSE it may still land.
_NOT_APPLIED_CODES = frozenset({ExcCodes.DEVICE_BUSY, ExcCodes.GATEWAY_PATH_UNAVIABLE})
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST, drops unsent


@dataclass(frozen=True)
class ModbusDevice(ModeTable[int]):
    """Where a controller lives and how its mode register is laid out."""

    asset: str
    host: str
    port: int
    unit: int
    mode_register: int
    modes: Mapping[str, int]
    # The device type's fallback: used when a step names no mode.
    safe_mode: str | None = None

    def __post_init__(self) -> None:
        self.check_safe_mode(self.asset)
        for mode, value in self.modes.items():
            # A holding register holds 16 bits; anything else cannot be written.
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
                raise ValueError(f"{self.asset}: mode {mode!r} value {value!r} is not a register")


def _exception_error(device: ModbusDevice, what: str, response: Any) -> Exception:
    code = getattr(response, "exception_code", None)
    message = f"{device.asset} refused the {what}: {response}"
    if what == "write" and code in _NOT_APPLIED_CODES:
        return WriteRefusedError(message)
    if code in _TRANSIENT_EXCEPTION_CODES:
        return TransientAdapterError(message)
    return PermanentAdapterError(message)


class ModbusFallbackAdapter(ModeSwitchAdapter[ModbusDevice, AsyncModbusTcpClient, int]):
    """Adapter `modbus`: action `set` with `args.mode` on target `{"asset": ...}`."""

    name = "modbus"
    kind = "Modbus device"
    noun = "device(s)"
    reads_back = "register reads back"
    mismatch = "register holds {current}, expected {expected}"

    def __init__(
        self,
        devices: Mapping[str, ModbusDevice],
        *,
        timeout_s: float = 2.0,
        keep_connections: bool = False,
        settle_s: float = DEFAULT_SETTLE_S,
    ) -> None:
        super().__init__(devices, keep_connections=keep_connections, settle_s=settle_s)
        self._timeout_s = timeout_s

    def _endpoint(self, point: ModbusDevice) -> tuple[str, int]:
        return (point.host, point.port)

    def _fence_key(self, point: ModbusDevice) -> Hashable:
        # The register itself: two asset names for one register still exclude each other.
        return (point.host, point.port, point.unit, point.mode_register)

    async def _connect(self, point: ModbusDevice) -> AsyncModbusTcpClient:
        # retries=0: Temporal owns retries, so a slow device is not hammered twice over;
        # reconnect_delay=0: no background reconnect loop outliving the call.
        client = AsyncModbusTcpClient(
            point.host,
            port=point.port,
            timeout=self._timeout_s,
            retries=0,
            reconnect_delay=0,
        )
        if not await client.connect():
            client.close()
            raise TransientAdapterError(
                f"cannot connect to {point.asset} at {point.host}:{point.port}"
            )
        return client

    async def _disconnect(self, connection: AsyncModbusTcpClient) -> None:
        connection.close()

    async def _abandon(self, connection: AsyncModbusTcpClient) -> None:
        transport = connection.ctx.transport
        if isinstance(transport, asyncio.WriteTransport):
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
            transport.abort()  # drop our unsent buffer instead of flushing it
        connection.close()

    def _alive(self, connection: AsyncModbusTcpClient) -> bool:
        return bool(connection.connected)

    async def _read(
        self, connection: AsyncModbusTcpClient, point: ModbusDevice, *, verifying: bool
    ) -> int:
        try:
            response = await connection.read_holding_registers(
                point.mode_register, count=1, device_id=point.unit
            )
        except ModbusException as exc:
            raise TransientAdapterError(f"reading {point.asset} failed: {exc}") from exc
        if response.isError():
            raise _exception_error(point, "read", response)
        return int(response.registers[0])

    async def _write(
        self, connection: AsyncModbusTcpClient, point: ModbusDevice, value: int, *, restoring: bool
    ) -> None:
        try:
            response = await connection.write_register(
                point.mode_register, value, device_id=point.unit
            )
        except ModbusException as exc:
            raise TransientAdapterError(f"writing {point.asset} failed: {exc}") from exc
        if response.isError():
            raise _exception_error(point, "write", response)

    def _change(self, point: ModbusDevice, mode: str, value: int, current: int) -> str:
        return (
            f"write {value} ({mode}) to holding register {point.mode_register} of unit "
            f"{point.unit} at {point.host}:{point.port}, was {current} "
            f"({point.mode_of(current)})"
        )

    def _previous(self, point: ModbusDevice, value: Any) -> int:
        return int(value)
