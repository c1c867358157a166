"""What the "switch a device to a mode" adapters (modbus, opcua, http) have in common.

Each one reads a mode value from a configured point, writes the wanted value only when
the point does not already hold it (so a retried apply writes nothing twice), and records
both sides as `{"mode", "value"}`; rollback writes the recorded value back, and verify
reads the point again. A subclass says only how to connect, read, write and describe a
change; it sorts its protocol's failures into transient and permanent errors itself.

By default every call opens and closes its own connection, so an adapter nobody closes
leaks nothing. `keep_connections=True` keeps one connection per endpoint (a containment
burst then costs no handshakes); the owner must `await adapter.aclose()`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Hashable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast

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
LAB_ENDPOINT = "lab"

V = TypeVar("V")


class ModeTable(Generic[V]):
    """Mode names and the values they stand for on one point; mixed into its dataclass."""

    asset: str
    modes: Mapping[str, V]
    # The device type's fallback: used when a step names no mode.
    safe_mode: str | None

    def check_safe_mode(self, where: str) -> None:
        if self.safe_mode is not None and self.safe_mode not in self.modes:
            raise ValueError(f"{where}: safe_mode {self.safe_mode!r} is not one of its modes")

    def value_of(self, mode: str) -> V:
        if mode not in self.modes:
            allowed = ", ".join(sorted(self.modes))
            raise PermanentAdapterError(
                f"mode {mode!r} is not allowed on {self.asset} (allowed: {allowed})"
            )
        return self.modes[mode]

    def mode_of(self, value: object) -> str:
        for name, known in self.modes.items():
            # True == 1, but a Boolean point's True is not an integer register's 1.
            if known == value and isinstance(known, bool) == isinstance(value, bool):
                return name
        return f"unknown({value!r})"

    def state(self, value: object) -> dict[str, Any]:
        """A value as receipts and observations record it."""
        return {"mode": self.mode_of(value), "value": value}


class NoModeError(PermanentAdapterError):
    """The point answered, but not with a mode value: verify reports a failed check."""


P = TypeVar("P", bound=ModeTable[Any])  # the configured point (device, node, switch)
C = TypeVar("C")  # one open connection to it


class ModeSwitchAdapter(ABC, Generic[P, C, V]):
    """Action `set` with `args.mode` on target `{"asset": ...}`; subclasses fill the hooks."""

    name: str
    kind: str  # what a point is, for "no <kind> is known for target ..."
    noun: str  # what capabilities counts: "<n> <noun> configured"
    done = "written"  # what apply did to the point, for the receipt's detail
    reads_back = "the point reads back"
    mismatch = "the point holds {current!r}, expected {expected!r}"
    # Whether a transient failure drops the kept connection, so the next call dials afresh.
    redial_after_transient = True

    def __init__(self, points: Mapping[str, P], *, keep_connections: bool) -> None:
        self._points = dict(points)
        self._keep = keep_connections
        self._connections: dict[Hashable, C] = {}
        self._connecting: dict[Hashable, asyncio.Lock] = {}

    # --- what a protocol supplies --------------------------------------------------------

    @abstractmethod
    def _endpoint(self, point: P) -> Hashable:
        """The key under which a kept connection to the point is shared."""

    @abstractmethod
    async def _connect(self, point: P) -> C: ...

    @abstractmethod
    async def _disconnect(self, connection: C) -> None: ...

    @abstractmethod
    def _alive(self, connection: C) -> bool: ...

    @abstractmethod
    async def _read(self, connection: C, point: P, *, verifying: bool) -> V:
        """The point's current value (`verifying`: for verify, not before a write)."""

    @abstractmethod
    async def _write(self, connection: C, point: P, value: V, *, restoring: bool) -> None:
        """Set the point to `value` (`restoring`: for rollback)."""

    @abstractmethod
    def _change(self, point: P, mode: str, value: V, current: V) -> str:
        """The plan's line for a write that is needed."""

    def _previous(self, point: P, value: Any) -> V:
        """A receipt's recorded value, checked before rollback writes it back."""
        del point
        return cast("V", value)

    # --- connections -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
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
        connections, self._connections = self._connections, {}
        await asyncio.gather(*(self._disconnect(c) for c in connections.values()))

    async def _kept(self, point: P) -> C:
        key = self._endpoint(point)
        connection = self._connections.get(key)
        if connection is not None and self._alive(connection):
            return connection
        # One connect per endpoint even when a burst of steps arrives at once.
        async with self._connecting.setdefault(key, asyncio.Lock()):
            connection = self._connections.get(key)
            if connection is not None and self._alive(connection):
                return connection
            if connection is not None:
                del self._connections[key]
                await self._disconnect(connection)
            self._connections[key] = connection = await self._connect(point)
            return connection

    @asynccontextmanager
    async def _connection(self, point: P) -> AsyncIterator[C]:
        if not self._keep:
            connection = await self._connect(point)
            try:
                yield connection
            finally:
                await self._disconnect(connection)
            return
        connection = await self._kept(point)
        try:
            yield connection
        except TransientAdapterError:
            if self.redial_after_transient:
                # The connection may be half-dead; the next call dials afresh.
                key = self._endpoint(point)
                if self._connections.get(key) is connection:
                    del self._connections[key]
                await self._disconnect(connection)
            raise

    # --- the adapter contract --------------------------------------------------------

    def _point(self, target: Mapping[str, object]) -> P:
        asset = target.get("asset")
        if not isinstance(asset, str) or asset not in self._points:
            raise PermanentAdapterError(f"no {self.kind} is known for target {dict(target)!r}")
        return self._points[asset]

    def _check(self, command: StepCommand) -> tuple[P, str, V]:
        if command.action not in SUPPORTED_ACTIONS:
            raise PermanentAdapterError(
                f"{self.name} adapter supports {SUPPORTED_ACTIONS}, not {command.action!r}"
            )
        point = self._point(command.target)
        mode = command.args.get("mode", point.safe_mode)
        if not isinstance(mode, str):
            raise PermanentAdapterError(f"{self.name} step needs args.mode (a mode name)")
        return point, mode, point.value_of(mode)

    async def plan(self, command: StepCommand) -> Plan:
        point, mode, value = self._check(command)
        async with self._connection(point) as connection:
            current = await self._read(connection, point, verifying=False)
        change = (
            f"no change: {point.asset} already in {mode}"
            if current == value
            else self._change(point, mode, value, current)
        )
        return Plan(
            adapter=self.name,
            summary=f"switch {point.asset} to {mode}",
            changes=[change],
            before=point.state(current),
            after={"mode": mode, "value": value},
        )

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        point, mode, value = self._check(command)
        async with self._connection(point) as connection:
            current = await self._read(connection, point, verifying=False)
            if current != value:
                await self._write(connection, point, value, restoring=False)
        return Receipt(
            adapter=self.name,
            key=key,
            target=dict(command.target),
            action=command.action,
            applied=True,
            before=point.state(current),
            after={"mode": mode, "value": value},
            detail=f"already in mode, nothing {self.done}" if current == value else self.done,
        )

    async def verify(self, receipt: Receipt) -> Verification:
        point = self._point(receipt.target)
        expected = receipt.after.get("value")
        try:
            async with self._connection(point) as connection:
                current = await self._read(connection, point, verifying=True)
        except NoModeError as exc:
            return Verification(ok=False, detail=str(exc))
        observed = point.state(current)
        if current == expected:
            return Verification(ok=True, observed=observed, detail=self.reads_back)
        detail = self.mismatch.format(current=current, expected=expected)
        return Verification(ok=False, observed=observed, detail=detail)

    async def rollback(self, receipt: Receipt) -> Receipt:
        point = self._point(receipt.target)
        if not receipt.applied or "value" not in receipt.before:
            return receipt.model_copy(update={"applied": False, "detail": "nothing to undo"})
        previous = self._previous(point, receipt.before["value"])
        async with self._connection(point) as connection:
            current = await self._read(connection, point, verifying=False)
            if current != previous:
                await self._write(connection, point, previous, restoring=True)
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
            usable=bool(self._points),
            actions=list(SUPPORTED_ACTIONS),
            detail=f"{len(self._points)} {self.noun} configured",
        )
