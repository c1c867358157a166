"""Service fallback over Modbus TCP: switch a controller's mode register to a safe mode.

Apply writes the safe value only when the register does not already hold it, so a retried
apply after a crash writes nothing twice. Verify reads the register back from the device.

By default every call opens and closes its own connection, so an adapter nobody closes
leaks nothing. `keep_connections=True` keeps one connected client per host:port (a
containment burst then costs no TCP handshakes); the owner must `await adapter.aclose()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException

from adapters.base import (
    Capabilities,
    PermanentAdapterError,
    Plan,
    Receipt,
    StepCommand,
    TransientAdapterError,
    Verification,
)

SUPPORTED_ACTIONS = ("set",)
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
class ModbusDevice:
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
        if self.safe_mode is not None and self.safe_mode not in self.modes:
            raise ValueError(f"{self.asset}: safe_mode {self.safe_mode!r} is not one of its modes")
        for mode, value in self.modes.items():
            # A holding register holds 16 bits; anything else cannot be written.
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
                raise ValueError(f"{self.asset}: mode {mode!r} value {value!r} is not a register")

    def value_of(self, mode: str) -> int:
        if mode not in self.modes:
            allowed = ", ".join(sorted(self.modes))
            raise PermanentAdapterError(
                f"mode {mode!r} is not allowed on {self.asset} (allowed: {allowed})"
            )
        return self.modes[mode]

    def mode_of(self, value: int) -> str:
        for name, known in self.modes.items():
            if known == value:
                return name
        return f"unknown({value})"


def _exception_error(device: ModbusDevice, what: str, response: Any) -> Exception:
    code = getattr(response, "exception_code", None)
    message = f"{device.asset} refused the {what}: {response}"
    if code in _TRANSIENT_EXCEPTION_CODES:
        return TransientAdapterError(message)
    return PermanentAdapterError(message)


class ModbusFallbackAdapter:
    """Adapter `modbus`: action `set` with `args.mode` on target `{"asset": ...}`."""

    name = "modbus"

    def __init__(
        self,
        devices: Mapping[str, ModbusDevice],
        *,
        timeout_s: float = 2.0,
        keep_connections: bool = False,
    ) -> None:
        self._devices = dict(devices)
        self._timeout_s = timeout_s
        self._keep = keep_connections
        self._clients: dict[tuple[str, int], AsyncModbusTcpClient] = {}
        self._connecting: dict[tuple[str, int], asyncio.Lock] = {}

    async def __aenter__(self) -> ModbusFallbackAdapter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close kept connections (a no-op without keep_connections)."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def _device(self, target: Mapping[str, object]) -> ModbusDevice:
        asset = target.get("asset")
        if not isinstance(asset, str) or asset not in self._devices:
            raise PermanentAdapterError(f"no Modbus device is known for target {dict(target)!r}")
        return self._devices[asset]

    async def _connect(self, device: ModbusDevice) -> AsyncModbusTcpClient:
        # retries=0: Temporal owns retries, so a slow device is not hammered twice over;
        # reconnect_delay=0: no background reconnect loop outliving the call.
        client = AsyncModbusTcpClient(
            device.host,
            port=device.port,
            timeout=self._timeout_s,
            retries=0,
            reconnect_delay=0,
        )
        if not await client.connect():
            client.close()
            raise TransientAdapterError(
                f"cannot connect to {device.asset} at {device.host}:{device.port}"
            )
        return client

    async def _kept(self, device: ModbusDevice) -> AsyncModbusTcpClient:
        key = (device.host, device.port)
        client = self._clients.get(key)
        if client is not None and client.connected:
            return client
        # One connect per endpoint even when a burst of steps arrives at once.
        async with self._connecting.setdefault(key, asyncio.Lock()):
            client = self._clients.get(key)
            if client is not None and client.connected:
                return client
            if client is not None:
                client.close()
            self._clients[key] = client = await self._connect(device)
            return client

    @asynccontextmanager
    async def _client(self, device: ModbusDevice) -> AsyncIterator[AsyncModbusTcpClient]:
        if not self._keep:
            client = await self._connect(device)
            try:
                yield client
            finally:
                client.close()
            return
        client = await self._kept(device)
        try:
            yield client
        except TransientAdapterError:
            # The connection may be half-dead; the next call dials afresh.
            if self._clients.get((device.host, device.port)) is client:
                del self._clients[(device.host, device.port)]
            client.close()
            raise

    async def _read_mode(self, client: AsyncModbusTcpClient, device: ModbusDevice) -> int:
        try:
            response = await client.read_holding_registers(
                device.mode_register, count=1, device_id=device.unit
            )
        except ModbusException as exc:
            raise TransientAdapterError(f"reading {device.asset} failed: {exc}") from exc
        if response.isError():
            raise _exception_error(device, "read", response)
        return int(response.registers[0])

    async def _write_mode(
        self, client: AsyncModbusTcpClient, device: ModbusDevice, value: int
    ) -> None:
        try:
            response = await client.write_register(
                device.mode_register, value, device_id=device.unit
            )
        except ModbusException as exc:
            raise TransientAdapterError(f"writing {device.asset} failed: {exc}") from exc
        if response.isError():
            raise _exception_error(device, "write", response)

    def _check(self, command: StepCommand) -> tuple[ModbusDevice, str, int]:
        if command.action not in SUPPORTED_ACTIONS:
            raise PermanentAdapterError(
                f"modbus adapter supports {SUPPORTED_ACTIONS}, not {command.action!r}"
            )
        device = self._device(command.target)
        mode = command.args.get("mode", device.safe_mode)
        if not isinstance(mode, str):
            raise PermanentAdapterError("modbus step needs args.mode (a mode name)")
        return device, mode, device.value_of(mode)

    async def plan(self, command: StepCommand) -> Plan:
        device, mode, value = self._check(command)
        async with self._client(device) as client:
            current = await self._read_mode(client, device)
        change = (
            f"no change: {device.asset} already in {mode}"
            if current == value
            else f"write {value} ({mode}) to holding register {device.mode_register} of unit "
            f"{device.unit} at {device.host}:{device.port}, was {current} "
            f"({device.mode_of(current)})"
        )
        return Plan(
            adapter=self.name,
            summary=f"switch {device.asset} to {mode}",
            changes=[change],
            before={"mode": device.mode_of(current), "value": current},
            after={"mode": mode, "value": value},
        )

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        device, mode, value = self._check(command)
        async with self._client(device) as client:
            current = await self._read_mode(client, device)
            if current != value:
                await self._write_mode(client, device, value)
        return Receipt(
            adapter=self.name,
            key=key,
            target=dict(command.target),
            action=command.action,
            applied=True,
            before={"mode": device.mode_of(current), "value": current},
            after={"mode": mode, "value": value},
            detail="already in mode, nothing written" if current == value else "written",
        )

    async def verify(self, receipt: Receipt) -> Verification:
        device = self._device(receipt.target)
        expected = receipt.after.get("value")
        async with self._client(device) as client:
            current = await self._read_mode(client, device)
        observed = {"mode": device.mode_of(current), "value": current}
        if current == expected:
            return Verification(ok=True, observed=observed, detail="register reads back")
        return Verification(
            ok=False,
            observed=observed,
            detail=f"register holds {current}, expected {expected}",
        )

    async def rollback(self, receipt: Receipt) -> Receipt:
        device = self._device(receipt.target)
        if not receipt.applied or "value" not in receipt.before:
            return receipt.model_copy(update={"applied": False, "detail": "nothing to undo"})
        previous = int(receipt.before["value"])
        async with self._client(device) as client:
            current = await self._read_mode(client, device)
            if current != previous:
                await self._write_mode(client, device, previous)
        return receipt.model_copy(
            update={
                "applied": False,
                "before": receipt.after,
                "after": receipt.before,
                "detail": "restored previous mode",
            }
        )

    async def capabilities(self) -> Capabilities:
        return Capabilities(
            adapter=self.name,
            usable=bool(self._devices),
            actions=list(SUPPORTED_ACTIONS),
            detail=f"{len(self._devices)} device(s) configured",
        )
