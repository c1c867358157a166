"""Helpers shared by the identity adapter tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest


@pytest.fixture
async def start_lab() -> AsyncIterator[Callable[[Any], Awaitable[Any]]]:
    """Starts a lab server (anything with async start/stop) and stops it after the test."""
    async with AsyncExitStack() as stack:

        async def start(lab):
            await lab.start()
            stack.push_async_callback(lab.stop)
            return lab

        yield start
