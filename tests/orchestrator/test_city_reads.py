"""What keeps a live city page cheap: the probes run at most every few seconds whoever
asks, and requests that arrive while the picture is read share that read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from conftest import free_port
from harness import make_settings

from orchestrator.city.health import ServiceHealthCache
from orchestrator.city.shared import SharedRead
from orchestrator.wiring.inventory import Inventory


class Listener:
    """A loopback TCP port that counts the probes that connect to it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0

    async def accept(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    found = Listener()
    server = await asyncio.start_server(found.accept, "127.0.0.1", found.port)
    try:
        yield found
    finally:
        server.close()
        await server.wait_closed()


def inventory(port: int) -> Inventory:
    probe = {"kind": "tcp", "host": "127.0.0.1", "port": port}
    return Inventory({"services": {"grid": {"zone": "energy", "probes": [probe]}}})


async def test_probes_run_at_most_once_per_ttl_whoever_asks(listener: Listener):
    now = [0.0]
    cache = ServiceHealthCache(ttl_s=5, clock=lambda: now[0])
    settings, city = make_settings(1), inventory(listener.port)
    first = await asyncio.gather(*(cache.health(settings, city, ["grid"]) for _ in range(5)))
    now[0] = 4.9
    again = await cache.health(settings, city, ["grid"])
    assert listener.connections == 1
    assert [r["grid"].healthy for r in [*first, again]] == [True] * 6
    now[0] = 5.0
    await cache.health(settings, city, ["grid"])
    assert listener.connections == 2
    closed = inventory(free_port())  # probes changed by a reload: probed again at once
    down = await cache.health(settings, closed, ["grid"])
    assert down["grid"].healthy is False and listener.connections == 2


async def test_requests_meanwhile_share_one_read_and_later_ones_get_a_fresh_one():
    reads = 0
    gate = asyncio.Event()

    async def read() -> int:
        nonlocal reads
        reads += 1
        await gate.wait()
        return reads

    shared: SharedRead[int] = SharedRead()
    waiting = [asyncio.ensure_future(shared.get(read)) for _ in range(3)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # one asker goes away: the others still get the read
    gate.set()
    assert await asyncio.gather(*waiting[1:]) == [1, 1]
    assert await shared.get(read) == 2
    assert reads == 2
