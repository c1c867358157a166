"""Connections of the mode switches (`adapters.service.modes`): dial, keep, cut.

By default every call opens and closes its own connection, so an adapter nobody closes
leaks nothing. `keep_connections=True` keeps one connection per endpoint (a containment
burst then costs no handshakes); the owner must `await adapter.aclose()`.

A connection that carries a write still unanswered when its call fails (timeout,
cancellation) is cut, not merely closed: `_abandon` makes sure nothing more goes out on
it, so that the only late write left to worry about is the one the device already has.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Generic, Self, TypeVar

from adapters.base import TransientAdapterError

P = TypeVar("P")  # the configured point (device, node, switch)
C = TypeVar("C")  # one open connection to it


class PointConnections(ABC, Generic[P, C]):
    """Connections to configured points; a protocol supplies the hooks."""

    # Whether a transient failure drops the kept connection, so the next call dials afresh.
    redial_after_transient = True

    def __init__(self, *, keep_connections: bool) -> None:
        self._keep = keep_connections
        self._connections: dict[Hashable, C] = {}
        self._connecting: dict[Hashable, asyncio.Lock] = {}
        # (connection, task) pairs, by id, with a write sent and not answered yet.
        self._writing: set[tuple[int, int]] = set()

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

    async def _abandon(self, connection: C) -> None:
        """Close a connection so that nothing more can be sent on it (a write may be
        unanswered on it); by default an ordinary disconnect."""
        await self._disconnect(connection)

    # --- keeping ---------------------------------------------------------------------

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

    def _forget(self, point: P, connection: C) -> None:
        key = self._endpoint(point)
        if self._connections.get(key) is connection:
            del self._connections[key]

    # --- one call's use --------------------------------------------------------------

    @staticmethod
    def _use(connection: C) -> tuple[int, int]:
        """This task's use of a connection (a kept one serves several calls at once)."""
        return (id(connection), id(asyncio.current_task()))

    def _sending(self, connection: C) -> None:
        """A write goes out on the connection: cut it if the call fails before the answer."""
        self._writing.add(self._use(connection))

    def _answered(self, connection: C) -> None:
        self._writing.discard(self._use(connection))

    @asynccontextmanager
    async def _connection(self, point: P) -> AsyncIterator[C]:
        connection = await (self._kept(point) if self._keep else self._connect(point))
        cut = False
        try:
            yield connection
        except BaseException as exc:
            if self._use(connection) in self._writing:
                self._answered(connection)
                await self._cut(point, connection)
                cut = True
            elif (
                self._keep
                and self.redial_after_transient
                and isinstance(exc, TransientAdapterError)
            ):
                # The connection may be half-dead; the next call dials afresh.
                self._forget(point, connection)
                await self._disconnect(connection)
            raise
        finally:
            if not self._keep and not cut:
                await self._disconnect(connection)

    async def _cut(self, point: P, connection: C) -> None:
        """A write on this connection is unanswered: nothing more may go out on it."""
        if self._keep and not self.redial_after_transient:
            # A pooling client (httpx) discards a connection whose request failed by
            # itself; closing the pool would break the other points' calls in flight.
            return
        self._forget(point, connection)
        await self._abandon(connection)
