"""Where the hash-chained audit trail goes: a JSONL file by default (one entry a line)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from workflows.state import AuditEntry


class AuditSink(Protocol):
    def write(self, entries: list[AuditEntry]) -> None: ...


class JsonlAuditSink:
    """Append-only file; each batch is flushed and fsynced before the activity returns,
    so an entry the workflow counts as exported survives a crash of this host."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, entries: list[AuditEntry]) -> None:
        lines = "".join(entry.model_dump_json() + "\n" for entry in entries)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())


def read_entries(path: Path) -> Iterator[tuple[int, AuditEntry | str]]:
    """(line number, entry) per line; a line that is not an entry yields its error text."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, AuditEntry.model_validate_json(line)
            except ValueError as exc:
                yield number, f"line {number}: not an audit entry ({exc.__class__.__name__})"
