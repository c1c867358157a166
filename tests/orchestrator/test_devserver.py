"""The dev server `bulkhead up` supervises keeps every commit on disk, in WAL mode.

tests/test_e2e_up.py finds the database in WAL mode after a real run; `synchronous` is a
per-connection setting that no other connection can read back, so this checks it is asked
for: without FULL, WAL mode syncs only at checkpoints, and a power cut could take back a
finding Temporal had already acknowledged.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from conftest import free_temporal_port

from orchestrator.temporal.devserver import DevServer


def test_the_dev_server_is_asked_for_wal_and_a_sync_on_every_commit(tmp_path: Path) -> None:
    command = DevServer(tmp_path).command()
    pragmas = [command[i + 1] for i, arg in enumerate(command) if arg == "--sqlite-pragma"]
    assert pragmas == ["journal_mode=wal", "synchronous=full"]
    assert command[command.index("--db-filename") + 1] == str(tmp_path / "temporal.db")


async def test_a_busy_ui_port_is_refused_before_the_server_starts(tmp_path: Path) -> None:
    """The dev server dies on a busy UI port with only its log to say why: say it first."""
    server = DevServer(tmp_path, port=free_temporal_port())
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", server.port + 1000))
        holder.listen()
        with pytest.raises(RuntimeError, match=rf"port {server.port + 1000} \(the Temporal UI"):
            await server.start()
    assert not (tmp_path / "temporal.log").exists(), "nothing was started"
