"""What the "switch a device to a mode" adapters (modbus, opcua, http) have in common.

Each one reads a mode value from a configured point, writes the wanted value only when
the point does not already hold it (so a retried apply writes nothing twice), and records
both sides as `{"mode", "value"}`; rollback writes the recorded value back, and verify
reads the point again. A subclass says only how to connect, read, write and describe a
change; it sorts its protocol's failures into transient and permanent errors itself.

Connections (per call by default, or kept with `keep_connections=True`, then the owner
must `await adapter.aclose()`) are handled by `adapters.service.connections`.

Late writes: a write to a slow device can outlast the timeout and still land, after a
retry or a rollback, leaving the device in the wrong mode. Hence:
- plan, apply and rollback of one point hold that point's fence (`adapters.service.fence`);
- a write that got no answer ends its attempt only after its connection is cut (nothing
  more can go out on it) and the point has been re-read until the value showed or the
  settle period (`settle_s`: how long a device may still apply a request it received)
  was over; only then is the failure reported and may a retry or a rollback begin;
- rollback writes the recorded value, re-reads after the last write that may still land
  and writes again, a bounded number of times, if one landed over it;
- every write (value, when, outcome) goes on the receipt, earlier failed attempts' too.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import Hashable, Mapping
from typing import Any, Generic, TypeVar, cast

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.service.connections import PointConnections
from adapters.service.fence import Purpose, TargetWrites, WriteEntry, WriteFence, describe
from contracts.adapter import (
    Capabilities,
    Plan,
    Receipt,
    StepCommand,
    Verification,
    WriteRecord,
)

SUPPORTED_ACTIONS = ("set",)
# How long a device may still apply a write it received. Why waiting that long settles it:
# Modbus TCP, see adapters.service.modbus. OPC UA: a Write the server received is carried
# out even when the client's session or socket goes away (the protocol cannot cancel
# it), so after cutting the socket the node is re-read the same way. HTTP: most servers
# finish a handler whose client disconnected, and httpx has already dropped the timed-out
# connection; the mode is re-read with the read call. The 3 s default assumes a device
# acts on what it received within a few seconds of its timeout.
DEFAULT_SETTLE_S = 3.0
# How often a settling point is re-read (each read is a request to the device).
SETTLE_POLL_S = 0.1
# Late writes a rollback overwrites before it gives up and lets the workflow escalate.
MAX_RESTORES = 3

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


class WriteRefusedError(TransientAdapterError):
    """The device answered that it did not apply the write, for now (busy): unlike a write
    left unanswered, nothing of it is in flight."""


class _WriteInDoubtError(TransientAdapterError):
    """A write got no answer: it may be lost, applied, or still on its way."""

    def __init__(self, message: str, entry: WriteEntry) -> None:
        super().__init__(message)
        self.entry = entry


P = TypeVar("P", bound=ModeTable[Any])  # the configured point (device, node, switch)
C = TypeVar("C")  # one open connection to it


class ModeSwitchAdapter(PointConnections[P, C], Generic[P, C, V]):
    """Action `set` with `args.mode` on target `{"asset": ...}`; subclasses fill the hooks."""

    name: str
    kind: str  # what a point is, for "no <kind> is known for target ..."
    noun: str  # what capabilities counts: "<n> <noun> configured"
    done = "written"  # what apply did to the point, for the receipt's detail
    reads_back = "the point reads back"
    mismatch = "the point holds {current!r}, expected {expected!r}"

    def __init__(
        self,
        points: Mapping[str, P],
        *,
        keep_connections: bool,
        settle_s: float = DEFAULT_SETTLE_S,
    ) -> None:
        super().__init__(keep_connections=keep_connections)
        self._points = dict(points)
        self._settle_s = settle_s
        self._fence = WriteFence()

    # --- what a protocol supplies (and the connection hooks) ---------------------------

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

    def _fence_key(self, point: P) -> Hashable:
        """Which writes exclude each other: by default those to one asset of an endpoint."""
        return (self._endpoint(point), point.asset)

    # --- writes and what becomes of them ---------------------------------------------

    async def _read_or_none(self, point: P) -> V | None:
        """The point's value on a fresh read; None while the device cannot be reached."""
        try:
            async with self._connection(point) as connection:
                return await self._read(connection, point, verifying=False)
        except TransientAdapterError:
            return None

    async def _write_once(  # noqa: PLR0917 - one write's whole context
        self,
        target: TargetWrites,
        connection: C,
        point: P,
        value: V,
        key: str,
        purpose: Purpose,
        reason: str = "",
    ) -> None:
        """One write, on record from the moment it is sent; _WriteInDoubtError if unanswered."""
        entry = target.begin(key, purpose, value, self._settle_s)
        self._sending(connection)
        try:
            await self._write(connection, point, value, restoring=purpose == "rollback")
        except (WriteRefusedError, PermanentAdapterError) as exc:
            self._answered(connection)
            entry.settle("refused", str(exc))
            raise
        except TransientAdapterError as exc:
            entry.detail = f"unconfirmed: {exc}"
            # _connection cuts the connection on the way out; the caller then settles.
            raise _WriteInDoubtError(str(exc), entry) from exc
        # Cancelled or crashed mid-write: the entry stays "interrupted" (in doubt until its
        # settle period is over, so the next holder of the fence waits it out).
        self._answered(connection)
        entry.settle("acknowledged", reason)

    async def _await_landing(self, point: P, entries: list[WriteEntry]) -> None:
        """Re-read the point until each write has shown or can no longer land."""
        pending = [entry for entry in entries if entry.outcome == "interrupted"]
        while pending:
            started = time.monotonic()
            current = await self._read_or_none(point)
            for entry in pending:
                if current is not None and current == entry.value:
                    entry.seen()
                elif started >= entry.settles_at:
                    # This read began after the deadline: what it shows is final.
                    entry.expired()
            pending = [entry for entry in pending if entry.outcome == "interrupted"]
            if pending:
                await asyncio.sleep(self._until_next_read(pending))

    @staticmethod
    def _until_next_read(pending: list[WriteEntry]) -> float:
        deadline = min(entry.settles_at for entry in pending)
        return max(0.0, min(SETTLE_POLL_S, deadline - time.monotonic()))

    async def _settled(self, point: P, doubt: _WriteInDoubtError) -> TransientAdapterError:
        """The failure to report once the unanswered write has shown or cannot land."""
        await self._await_landing(point, [doubt.entry])
        return TransientAdapterError(f"{point.asset}: {doubt.entry.detail}")

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

    def validate(self, command: StepCommand) -> None:
        """The checks `plan` makes before it reads the target, and nothing else: no I/O.

        Raises PermanentAdapterError saying why this adapter would refuse the step; used
        by `bulkhead policy check` to catch such steps before a policy is merged."""
        self._check(command)

    def queued_writers(self, asset: str) -> int:
        """How many calls wait behind the fence of an asset's point (diagnostics, tests)."""
        return self._fence.waiting(self._fence_key(self._points[asset]))

    async def plan(self, command: StepCommand) -> Plan:
        point, mode, value = self._check(command)
        # Under the fence, after any write still in flight: the "before" it returns becomes
        # the rollback intent, so it must not be a value about to be overwritten.
        async with self._fence.hold(self._fence_key(point)) as target:
            await self._await_landing(point, target.in_doubt())
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
        async with self._fence.hold(self._fence_key(point)) as target:
            # An earlier attempt cancelled mid-write: wait until its write landed or cannot,
            # so this one neither reads the old value nor writes a second time needlessly.
            await self._await_landing(point, target.in_doubt())
            try:
                async with self._connection(point) as connection:
                    current = await self._read(connection, point, verifying=False)
                    if current != value:
                        await self._write_once(target, connection, point, value, key, "apply")
            except _WriteInDoubtError as doubt:
                raise await self._settled(point, doubt) from doubt
            writes = target.take(key)
        detail = f"already in mode, nothing {self.done}" if current == value else self.done
        own_writes = 1 if current != value else 0
        earlier = writes[: len(writes) - own_writes]
        if earlier:
            detail += f"; earlier attempts: {describe(earlier)}"
        return Receipt(
            adapter=self.name,
            key=key,
            target=dict(command.target),
            action=command.action,
            applied=True,
            before=point.state(current),
            after={"mode": mode, "value": value},
            detail=detail,
            writes=writes,
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
        async with self._fence.hold(self._fence_key(point)) as target:
            try:
                overwritten = await self._restore(target, point, previous, receipt.key)
            except _WriteInDoubtError as doubt:
                raise await self._settled(point, doubt) from doubt
            writes: list[WriteRecord] = [*receipt.writes, *target.take(receipt.key)]
        detail = "restored previous mode"
        if overwritten:
            seen = ", ".join(f"{value!r} ({point.mode_of(value)})" for value in overwritten)
            detail += f"; late writes landed over the restore and were overwritten: {seen}"
        return receipt.model_copy(
            update={
                "applied": False,
                "before": receipt.after,
                "after": receipt.before,
                "detail": detail,
                "writes": writes,
            }
        )

    async def _restore(self, target: TargetWrites, point: P, previous: V, key: str) -> list[V]:
        """Write `previous` now, then keep re-reading until no write known to be in flight
        can land any more (none known: a single read-back), writing `previous` again when
        one landed over it. Returns the late values seen after the restore, oldest first.

        The restore goes out first rather than after the wait: a release must not wait
        on a write it is about to undo anyway."""
        # A late write of the very value being restored changes nothing: not worth a wait.
        doubtful = [entry for entry in target.in_doubt() if entry.value != previous]
        overwritten: list[V] = []
        first_read = True
        while True:
            started = time.monotonic()
            async with self._connection(point) as connection:
                current = await self._read(connection, point, verifying=False)
                for entry in doubtful:
                    if current == entry.value:
                        entry.seen()
                if current != previous:
                    if not first_read:  # it changed after the check or the restore
                        overwritten.append(current)
                    if len(overwritten) > MAX_RESTORES:
                        raise TransientAdapterError(
                            f"{point.asset} does not keep the restored value {previous!r}: "
                            f"it showed {overwritten!r} after {MAX_RESTORES + 1} restores"
                        )
                    reason = "" if first_read else f"after a late write of {current!r} landed"
                    await self._write_once(
                        target, connection, point, previous, key, "rollback", reason
                    )
                    first_read = False
                    continue  # read it back at once
            first_read = False
            for entry in doubtful:
                if entry.outcome == "interrupted" and started >= entry.settles_at:
                    entry.expired()
            doubtful = [entry for entry in doubtful if entry.outcome == "interrupted"]
            if not doubtful:
                return overwritten
            await asyncio.sleep(self._until_next_read(doubtful))

    async def capabilities(self) -> Capabilities:
        return Capabilities(
            adapter=self.name,
            usable=bool(self._points),
            actions=list(SUPPORTED_ACTIONS),
            detail=f"{len(self._points)} {self.noun} configured",
        )
