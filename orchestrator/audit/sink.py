"""Where the audit trail goes: a JSONL file by default (one sealed entry a line), and
optionally on to a webhook and PostgreSQL (orchestrator/audit/export.py).

The JSONL file is the primary copy: it seals the chain (keyed with the audit key, see
orchestrator/audit/chain.py). Forwarders receive the sealed entries, so every copy
carries the same seals and `bulkhead audit verify` checks any of them; they are also the
anchors that the signed checkpoints go to (orchestrator/audit/checkpointer.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from contracts.incident import AuditEntry
from orchestrator.audit.chain import genesis, seal
from orchestrator.audit.checkpoint import Checkpoint, Head, append_private
from orchestrator.audit.shared import Tail, numbered_lines, trail_lock

# Sealed entries remembered for forwarders whose delivery is retried: an export activity
# that failed on a forwarder is retried with the same entries, which the file already has.
RECENT_SEALED = 50_000


class AuditSink(Protocol):
    def write(self, entries: list[AuditEntry]) -> None: ...


class AuditForwarder(Protocol):
    """A secondary copy of the trail, and an anchor for its checkpoints; must accept the
    same sealed entry (and the same checkpoint) twice."""

    name: str

    def send(self, sealed: Sequence[AuditEntry]) -> None: ...

    def send_checkpoint(self, checkpoint: Checkpoint) -> None: ...


class CheckpointHook(Protocol):
    """Told of every batch once the file and the forwarders hold it."""

    def after_write(self, sealed: Sequence[AuditEntry]) -> None: ...


class JsonlAuditSink:
    """Append-only, chained file, private to its owner (0600).

    Export is at-least-once, so the sink remembers the last sealed entry of each incident
    (rebuilt from the file on first use) and drops entries it already holds. Each batch is
    flushed and fsynced before the activity returns, so an entry counted as exported
    survives a crash of this host. With a `key` each entry is sealed with an HMAC; without
    one (tests, and trails from before the key) with a plain hash that `bulkhead audit
    verify` reports as unkeyed.
    """

    def __init__(
        self,
        path: Path,
        on_sealed: Callable[[list[AuditEntry]], None] | None = None,
        *,
        key: bytes | None = None,
    ) -> None:
        self.path = path
        # Told of each entry once, when it is first sealed (metrics count from it).
        self._on_sealed = on_sealed
        self._key = key
        # Other worker processes may append to the same file: see orchestrator/audit/shared.py.
        self._lock = trail_lock(path)
        self._tail = Tail(path)
        self._heads: dict[str, Head] = {}
        self._recent: OrderedDict[tuple[str, int], AuditEntry] = OrderedDict()

    @property
    def keyed(self) -> bool:
        return self._key is not None

    def _catch_up(self) -> None:
        """Advance the heads over what was appended since the last look, by this process
        or another (under the lock), remembering the newest for retried exports: after a
        restart those are the ones retried, and `_sealed_copy` would otherwise read the
        whole file for each while every worker of the host waits."""
        restarted = self._tail.replaced()
        if restarted:
            self._heads = {}
            self._recent.clear()
        for line in self._tail.lines():
            try:
                entry = AuditEntry.model_validate_json(line)
            except ValueError:
                continue  # `bulkhead audit verify` names the line; sealing goes on
            if entry.hash is None:
                continue
            self._heads[entry.incident_id] = _advanced(self._heads.get(entry.incident_id), entry)
            self._remember(entry)

    def heads(self) -> list[Head]:
        """Every incident's head as the file holds it now, ordered by incident id."""
        with self._lock:
            self._catch_up()
            return [self._heads[incident] for incident in sorted(self._heads)]

    def write(self, entries: list[AuditEntry]) -> None:
        self.seal(entries)

    def seal(self, entries: list[AuditEntry]) -> list[AuditEntry]:
        """Append what is new; return the sealed form of every entry of the batch."""
        with self._lock:
            self._catch_up()
            result: list[AuditEntry] = []
            fresh: list[AuditEntry] = []
            for entry in entries:
                head = self._heads.get(entry.incident_id)
                if head is not None and entry.seq <= head.seq:
                    # Already sealed: a retried export. Forwarders still need it.
                    known = self._sealed_copy(entry)
                    if known is not None:
                        result.append(known)
                    continue
                prev = head.hash if head is not None else genesis(entry.incident_id)
                sealed = seal(entry, prev, self._key)
                self._heads[entry.incident_id] = _advanced(head, sealed)
                self._remember(sealed)
                result.append(sealed)
                fresh.append(sealed)
            if fresh:
                # After a torn line (a writer died mid-line) the batch starts a line of its own.
                text = "\n" * self._tail.torn + "".join(e.model_dump_json() + "\n" for e in fresh)
                try:
                    append_private(self.path, text)
                except BaseException:
                    # Some, all or none of it may be in the file: forget what was sealed
                    # here and read the file again on the next batch.
                    self._forget()
                    raise
                self._tail.skip(len(text.encode()))
                if self._on_sealed is not None:
                    self._on_sealed(fresh)
            return result

    def _forget(self) -> None:
        self._tail = Tail(self.path)
        self._heads = {}
        self._recent.clear()

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
    """The JSONL file first, then each forwarder with the sealed entries, then the
    checkpoints, so a release checkpoint names entries the anchors already hold. (A
    periodic one, from the timer, can name entries another export is still forwarding: an
    anchor read on its own may then lack them for that moment, or until that export's
    retry lands them. The file always holds what a checkpoint names.)

    A forwarder that fails raises, so the export activity is retried: the file drops what
    it holds and hands back the sealed copies, and each forwarder accepts repeats.
    """

    def __init__(
        self,
        primary: JsonlAuditSink,
        forwarders: Sequence[AuditForwarder],
        checkpoints: CheckpointHook | None = None,
    ) -> None:
        self.primary = primary
        self.forwarders = list(forwarders)
        self.checkpoints = checkpoints

    def write(self, entries: list[AuditEntry]) -> None:
        sealed = self.primary.seal(entries)
        if not sealed:
            return
        for forwarder in self.forwarders:
            forwarder.send(sealed)
        if self.checkpoints is not None:
            self.checkpoints.after_write(sealed)


def _advanced(head: Head | None, sealed: AuditEntry) -> Head:
    """The head after `sealed`, counting the incident's entries."""
    assert sealed.hash is not None  # noqa: S101 - a sealed entry carries its seal
    count = head.count + 1 if head is not None else 1
    return Head(incident_id=sealed.incident_id, seq=sealed.seq, hash=sealed.hash, count=count)


def read_entries(path: Path, limit: int | None = None) -> Iterator[tuple[int, AuditEntry | str]]:
    """(line number, entry) per line of the first `limit` bytes (settled_sizes); a line
    that is not an entry yields its error text."""
    for number, line in numbered_lines(path, limit):
        try:
            yield number, AuditEntry.model_validate_json(line)
        except ValueError as exc:
            yield number, f"line {number}: not an audit entry ({exc.__class__.__name__})"
