"""Real service simulators on loopback for the fallback adapters and the probes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Protocol, TypeVar

import pytest
from conftest import free_port

from orchestrator.lab.cityservice import SERVICES, CityServiceLab
from orchestrator.lab.substation import MODE_REMOTE, SubstationLab


class _Lab(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


LabT = TypeVar("LabT", bound=_Lab)


@contextlib.asynccontextmanager
async def running(lab: LabT) -> AsyncIterator[LabT]:
    await lab.start()
    try:
        yield lab
    finally:
        await lab.stop()


@pytest.fixture(scope="session")
async def substation_server() -> AsyncIterator[SubstationLab]:
    """One OPC UA server for the session: building its address space takes a second."""
    async with running(SubstationLab(port=free_port())) as lab:
        yield lab


@pytest.fixture
async def substation(substation_server: SubstationLab) -> SubstationLab:
    """The shared server, listening, with every RTU back in remote and no writes counted."""
    await substation_server.start()
    for name in substation_server.substations:
        await substation_server.set(name, "ControlMode", MODE_REMOTE)
        await substation_server.set(name, "BreakerClosed", value=True)
    substation_server.writes.clear()
    return substation_server


@pytest.fixture(scope="session")
async def city_server() -> AsyncIterator[CityServiceLab]:
    async with running(CityServiceLab(port=free_port())) as lab:
        yield lab


@pytest.fixture
async def city(city_server: CityServiceLab) -> CityServiceLab:
    """The shared city services, listening, every service normal, no faults or writes."""
    await city_server.start()
    city_server.modes.update(dict.fromkeys(SERVICES, "normal"))
    city_server.writes.clear()
    city_server.dispatch_up = True
    city_server.delay_s = 0.0
    city_server.fail_status = None
    return city_server


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never says a word: a hung device."""
    connections: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        del reader
        connections.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()


@pytest.fixture
def full_backlog_port() -> Iterator[int]:
    """A port whose accept queue is full, so a new TCP handshake never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.settimeout(0)  # non-blocking: the handshake is left to the kernel
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
