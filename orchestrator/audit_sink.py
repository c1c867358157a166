"""Where the audit trail goes: a JSONL file by default (one sealed entry a line)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from orchestrator.audit_chain import genesis, seal
from workflows.state import AuditEntry


class AuditSink(Protocol):
    def write(self, entries: list[AuditEntry]) -> None: ...


class JsonlAuditSink:
    """Append-only, hash-chained file.

    Export is at-least-once, so the sink remembers the last sealed entry of each incident
    (rebuilt from the file on first use) and drops entries it already holds. Each batch is
    flushed and fsynced before the activity returns, so an entry counted as exported
    survives a crash of this host.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._heads: dict[str, tuple[int, str]] | None = None

    def _load_heads(self) -> dict[str, tuple[int, str]]:
        heads: dict[str, tuple[int, str]] = {}
        if self.path.is_file():
            for _, entry in read_entries(self.path):
                if isinstance(entry, AuditEntry) and entry.hash is not None:
                    heads[entry.incident_id] = (entry.seq, entry.hash)
        return heads

    def write(self, entries: list[AuditEntry]) -> None:
        with self._lock:
            if self._heads is None:
                self._heads = self._load_heads()
            lines = []
            for entry in entries:
                last_seq, last_hash = self._heads.get(
                    entry.incident_id, (0, genesis(entry.incident_id))
                )
                if entry.seq <= last_seq:
                    continue  # already sealed: a retried export
                sealed = seal(entry, last_hash)
                assert sealed.hash is not None  # noqa: S101 - seal always sets it
                self._heads[entry.incident_id] = (entry.seq, sealed.hash)
                lines.append(sealed.model_dump_json() + "\n")
            if not lines:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("".join(lines))
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
