"""Where the audit trail goes: a JSONL file by default (one sealed entry a line), and
optionally on to a webhook and PostgreSQL (orchestrator/audit_export.py).

The JSONL file is the primary copy: it seals the hash chain. Forwarders receive the
sealed entries, so every copy carries the same hashes and `bulkhead audit verify` checks
any of them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from orchestrator.audit_chain import genesis, seal
from workflows.state import AuditEntry

# Sealed entries remembered for forwarders whose delivery is retried: an export activity
# that failed on a forwarder is retried with the same entries, which the file already has.
RECENT_SEALED = 50_000


class AuditSink(Protocol):
    def write(self, entries: list[AuditEntry]) -> None: ...


class AuditForwarder(Protocol):
    """A secondary copy of the trail; must accept the same sealed entry twice."""

    name: str

    def send(self, sealed: Sequence[AuditEntry]) -> None: ...


class JsonlAuditSink:
    """Append-only, hash-chained file.

    Export is at-least-once, so the sink remembers the last sealed entry of each incident
    (rebuilt from the file on first use) and drops entries it already holds. Each batch is
    flushed and fsynced before the activity returns, so an entry counted as exported
    survives a crash of this host.
    """

    def __init__(
        self, path: Path, on_sealed: Callable[[list[AuditEntry]], None] | None = None
    ) -> None:
        self.path = path
        # Told of each entry once, when it is first sealed (metrics count from it).
        self._on_sealed = on_sealed
        self._lock = threading.Lock()
        self._heads: dict[str, tuple[int, str]] | None = None
        self._recent: OrderedDict[tuple[str, int], AuditEntry] = OrderedDict()

    def _load_heads(self) -> dict[str, tuple[int, str]]:
        heads: dict[str, tuple[int, str]] = {}
        if self.path.is_file():
            for _, entry in read_entries(self.path):
                if isinstance(entry, AuditEntry) and entry.hash is not None:
                    heads[entry.incident_id] = (entry.seq, entry.hash)
        return heads

    def write(self, entries: list[AuditEntry]) -> None:
        self.seal(entries)

    def seal(self, entries: list[AuditEntry]) -> list[AuditEntry]:
        """Append what is new; return the sealed form of every entry of the batch."""
        with self._lock:
            if self._heads is None:
                self._heads = self._load_heads()
            result: list[AuditEntry] = []
            fresh: list[AuditEntry] = []
            for entry in entries:
                last_seq, last_hash = self._heads.get(
                    entry.incident_id, (0, genesis(entry.incident_id))
                )
                if entry.seq <= last_seq:
                    # Already sealed: a retried export. Forwarders still need it.
                    known = self._sealed_copy(entry)
                    if known is not None:
                        result.append(known)
                    continue
                sealed = seal(entry, last_hash)
                assert sealed.hash is not None  # noqa: S101 - seal always sets it
                self._heads[entry.incident_id] = (entry.seq, sealed.hash)
                self._remember(sealed)
                result.append(sealed)
                fresh.append(sealed)
            if fresh:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write("".join(e.model_dump_json() + "\n" for e in fresh))
                    handle.flush()
                    os.fsync(handle.fileno())
                if self._on_sealed is not None:
                    self._on_sealed(fresh)
            return result

    def _remember(self, sealed: AuditEntry) -> None:
        self._recent[(sealed.incident_id, sealed.seq)] = sealed
        while len(self._recent) > RECENT_SEALED:
            self._recent.popitem(last=False)

    def _sealed_copy(self, entry: AuditEntry) -> AuditEntry | None:
        """The sealed entry as the file holds it (after a restart: read back from it)."""
        key = (entry.incident_id, entry.seq)
        if key not in self._recent and self.path.is_file():
            for _, line in read_entries(self.path):
                if isinstance(line, AuditEntry) and line.incident_id == entry.incident_id:
                    self._remember(line)
        return self._recent.get(key)


class ForwardingAuditSink:
    """The JSONL file first, then each forwarder with the sealed entries.

    A forwarder that fails raises, so the export activity is retried: the file drops what
    it holds and hands back the sealed copies, and each forwarder accepts repeats.
    """

    def __init__(self, primary: JsonlAuditSink, forwarders: Sequence[AuditForwarder]) -> None:
        self.primary = primary
        self.forwarders = list(forwarders)

    def write(self, entries: list[AuditEntry]) -> None:
        sealed = self.primary.seal(entries)
        if not sealed:
            return
        for forwarder in self.forwarders:
            forwarder.send(sealed)


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
