"""Service fallback over Modbus TCP: switch a controller's mode register to a safe mode.

Apply writes the safe value only when the register does not already hold it, so a retried
apply after a crash writes nothing twice. Verify reads the register back from the device.
Plan, receipts and connection keeping are shared with the other mode switches
(`adapters.service.modes`); `keep_connections=True` keeps one client per host:port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.service.modes import ModeSwitchAdapter, ModeTable

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
    ) -> None:
        super().__init__(devices, keep_connections=keep_connections)
        self._timeout_s = timeout_s

    def _endpoint(self, point: ModbusDevice) -> tuple[str, int]:
        return (point.host, point.port)

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
