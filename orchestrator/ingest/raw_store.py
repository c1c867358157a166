"""The claim check: raw SIEM payloads kept outside Temporal, addressed by their SHA-256.

A finding crosses into a workflow as a compact summary (workflows/compact.py) that names
its raw payload by digest (`raw_ref`); the bytes stay here, and the API and console serve
them on demand. Content addressing makes a store write idempotent (a redelivered webhook
stores nothing new) and lets a reader check what it got.

Two stores: files under the state dir (the default; one machine), or PostgreSQL when
`raw_postgres_dsn` is set (several API processes, one store). Writes happen before the
finding is handed to Temporal, so a payload the API acknowledged is always readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from contracts.compact import compact
from contracts.findings import Finding, RawRef
from orchestrator.config import Settings

DIGEST = re.compile(r"^[0-9a-f]{64}$")
TABLE_DDL = """
CREATE TABLE IF NOT EXISTS bulkhead_raw (
    sha256 text PRIMARY KEY,
    body bytea NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
)
"""
INSERT = "INSERT INTO bulkhead_raw (sha256, body) VALUES (%s, %s) ON CONFLICT DO NOTHING"
SELECT = "SELECT body FROM bulkhead_raw WHERE sha256 = %s"


class RawStoreError(Exception):
    """The store could not keep or read a payload; the webhook answers 503 (retry)."""


class RawStore(Protocol):
    name: str

    def put_many(self, bodies: Sequence[bytes]) -> list[RawRef]:
        """Keep every body (blocking); returns their references in the same order."""
        ...

    def get(self, sha256: str) -> bytes | None:
        """The body with this digest, or None if this store never kept it (blocking)."""
        ...


def ref_of(body: bytes) -> RawRef:
    return RawRef(sha256=hashlib.sha256(body).hexdigest(), bytes=len(body))


# No symlink is followed where the temporary file is made (as tempfile.mkstemp does).
TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC

# Raw payloads up to this size go to a file store without leaving the event loop.
INLINE_BYTES = 64 * 1024


class FileRawStore:
    """`<root>/<2 hex>/<64 hex>`, written to a temp file and renamed (never half a file),
    mode 0600 like the rest of the state dir."""

    name = "file"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: set[str] = set()  # fan-out directories known to exist

    def _location(self, sha256: str) -> tuple[str, str]:
        """A digest's fan-out directory and file, as str paths (see _put)."""
        parent = f"{self.root}/{sha256[:2]}"
        return parent, f"{parent}/{sha256}"

    def put_many(self, bodies: Sequence[bytes]) -> list[RawRef]:
        refs = [ref_of(body) for body in bodies]
        try:
            for ref, body in zip(refs, bodies, strict=True):
                self._put(ref.sha256, body)
        except OSError as exc:
            raise RawStoreError(f"the raw payload store at {self.root} failed: {exc}") from exc
        return refs

    def _put(self, sha256: str, body: bytes) -> None:
        # os calls on str paths, not pathlib and tempfile: this runs once per finding on
        # the event loop in an alert storm, and takes about half the time that way.
        parent, path = self._location(sha256)
        if os.access(path, os.F_OK):  # already kept: the store is content-addressed
            return
        if parent not in self._made:
            Path(parent).mkdir(mode=0o700, parents=True, exist_ok=True)
            self._made.add(parent)
        # Unique to this digest, process and thread: no other writer opens it meanwhile.
        temporary = f"{parent}/.incoming-{sha256[:16]}-{os.getpid()}-{threading.get_ident()}"
        try:
            handle = os.open(temporary, TEMP_FLAGS, 0o600)
        except FileNotFoundError:  # pruned since (a retention job): make it again
            Path(parent).mkdir(mode=0o700, parents=True, exist_ok=True)
            handle = os.open(temporary, TEMP_FLAGS, 0o600)
        try:
            try:
                view = memoryview(body)
                while view:  # os.write may write less than asked
                    view = view[os.write(handle, view) :]
            finally:
                os.close(handle)
            os.replace(temporary, path)  # noqa: PTH105 - str paths, on purpose (above)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)  # noqa: PTH108
            raise

    def get(self, sha256: str) -> bytes | None:
        if not DIGEST.match(sha256):
            return None
        try:
            return Path(self._location(sha256)[1]).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RawStoreError(f"the raw payload store at {self.root} failed: {exc}") from exc


class PostgresRawStore:
    """One row per digest in `bulkhead_raw`; a repeated body is not stored twice."""

    name = "postgres"

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._ready = False

    def _connect(self) -> Any:
        import psycopg  # noqa: PLC0415 - only deployments that keep payloads there need it

        try:
            connection = psycopg.connect(self._dsn, connect_timeout=5, autocommit=True)
        except psycopg.Error as exc:
            # The DSN may carry a password: say what failed, not the DSN.
            raise RawStoreError(f"PostgreSQL raw payload store cannot connect: {exc}") from exc
        if not self._ready:
            connection.execute(TABLE_DDL)
            self._ready = True
        return connection

    def put_many(self, bodies: Sequence[bytes]) -> list[RawRef]:
        import psycopg  # noqa: PLC0415

        refs = [ref_of(body) for body in bodies]
        rows = [(ref.sha256, body) for ref, body in zip(refs, bodies, strict=True)]
        try:
            with self._connect() as connection, connection.cursor() as cursor:
                cursor.executemany(INSERT, rows)
        except psycopg.Error as exc:
            raise RawStoreError(f"PostgreSQL raw payload store failed: {exc}") from exc
        return refs

    def get(self, sha256: str) -> bytes | None:
        import psycopg  # noqa: PLC0415

        if not DIGEST.match(sha256):
            return None
        try:
            with self._connect() as connection, connection.cursor() as cursor:
                cursor.execute(SELECT, (sha256,))
                row = cursor.fetchone()
        except psycopg.Error as exc:
            raise RawStoreError(f"PostgreSQL raw payload store failed: {exc}") from exc
        return None if row is None else bytes(row[0])


def raw_store(settings: Settings) -> RawStore:
    """PostgreSQL when `raw_postgres_dsn` is set, else files under `<state_dir>/raw`."""
    if settings.raw_postgres_dsn is not None:
        return PostgresRawStore(settings.raw_postgres_dsn.get_secret_value())
    return FileRawStore(settings.state_dir / "raw")


def check_in(store: RawStore, findings: Sequence[Finding]) -> list[Finding]:
    """Each finding as it may cross into Temporal: its raw payload kept in the store and
    named by `raw_ref`, the rest compacted (blocking: run it off the event loop)."""
    bodies = [f.raw_data.encode() for f in findings if f.raw_data is not None]
    refs = iter(store.put_many(bodies))
    return [
        compact(
            f
            if f.raw_data is None
            else f.model_copy(update={"raw_data": None, "raw_ref": next(refs)})
        )
        for f in findings
    ]


async def checked_in(store: RawStore, findings: Sequence[Finding]) -> list[Finding]:
    """check_in off the event loop: hashing and writing a megabyte takes milliseconds.
    A few kilobytes to a local file take tens of microseconds, less than the hop to a
    thread and back, so those are written in place (an alert storm is mostly those)."""
    size = sum(len(f.raw_data) for f in findings if f.raw_data is not None)
    if isinstance(store, FileRawStore) and size <= INLINE_BYTES:
        return check_in(store, findings)
    return await asyncio.to_thread(check_in, store, findings)


async def get(store: RawStore, sha256: str) -> bytes | None:
    return await asyncio.to_thread(store.get, sha256)
