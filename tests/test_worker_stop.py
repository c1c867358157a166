"""The suite's workers stop within a bound (harness.stop_within): a worker hung in
Temporal core's shutdown (sdk-python#1837) is left behind with a warning instead of
hanging the test that had its answer; a worker's own error still fails the test."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from harness import stop_within
from temporalio.worker import Worker


class HungShutdown:
    async def __aexit__(self, *exc: object) -> None:
        await asyncio.Event().wait()


class FailedRun:
    async def __aexit__(self, *exc: object) -> None:
        raise RuntimeError("worker fatal error")


async def test_a_shutdown_that_hangs_is_left_after_the_bound(capsys: pytest.CaptureFixture[Any]):
    started = asyncio.get_running_loop().time()
    await stop_within(cast(Worker, HungShutdown()), 0.2)
    assert asyncio.get_running_loop().time() - started < 5
    assert "did not finish shutting down in 0.2 s" in capsys.readouterr().err


async def test_a_worker_error_still_raises():
    with pytest.raises(RuntimeError, match="worker fatal error"):
        await stop_within(cast(Worker, FailedRun()), 5)
