"""Audit forwarders: the sealed trail also goes to a webhook (e.g. back to the SIEM) and
to PostgreSQL when configured. Both accept the same entry twice (delivery is retried).

They are the trail's anchors: stores that whoever can write the state dir cannot reach.
Each sealed entry goes there with its sequence number, and so does each signed checkpoint
of every incident's head (orchestrator/audit/checkpoint.py); `bulkhead audit verify
--postgres` compares the file with what PostgreSQL holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import httpx

from contracts.incident import AuditEntry
from orchestrator.audit.checkpoint import Checkpoint
from orchestrator.audit.sink import AuditForwarder
from orchestrator.ingest.signatures import sign

WEBHOOK_TIMEOUT_S = 10.0
TABLE_DDL = """
CREATE TABLE IF NOT EXISTS bulkhead_audit (
    incident_id text NOT NULL,
    seq integer NOT NULL,
    at text NOT NULL,
    kind text NOT NULL,
    detail jsonb NOT NULL,
    prev text NOT NULL,
    hash text NOT NULL,
    PRIMARY KEY (incident_id, seq)
)
"""
INSERT = """
INSERT INTO bulkhead_audit (incident_id, seq, at, kind, detail, prev, hash)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (incident_id, seq) DO NOTHING
"""
# A checkpoint is kept whole (its MAC covers the document); the MAC identifies it.
CHECKPOINT_DDL = """
CREATE TABLE IF NOT EXISTS bulkhead_audit_checkpoints (
    mac text PRIMARY KEY,
    number integer NOT NULL,
    at text NOT NULL,
    body jsonb NOT NULL
)
"""
INSERT_CHECKPOINT = """
INSERT INTO bulkhead_audit_checkpoints (mac, number, at, body) VALUES (%s, %s, %s, %s)
ON CONFLICT (mac) DO NOTHING
"""


class AuditExportError(Exception):
    """A forwarder could not deliver; the export activity retries the batch."""


class WebhookForwarder:
    """POSTs `{"entries": [...]}` (and `{"checkpoint": {...}}`) signed with Standard
    Webhooks; the webhook-id is the last entry's seal (the checkpoint's MAC), so a receiver
    can drop a repeated delivery."""

    name = "webhook"

    def __init__(self, url: str, secret: str, *, timeout_s: float = WEBHOOK_TIMEOUT_S) -> None:
        self.url = url
        self._secret = secret
        self._timeout_s = timeout_s

    def send(self, sealed: Sequence[AuditEntry]) -> None:
        entries = [e.model_dump(mode="json") for e in sealed]
        self._post({"entries": entries}, msg_id=f"audit_{_id_part(sealed[-1].hash or '')}")

    def send_checkpoint(self, checkpoint: Checkpoint) -> None:
        document = {"checkpoint": checkpoint.model_dump(mode="json")}
        self._post(document, msg_id=f"audit_checkpoint_{_id_part(checkpoint.mac)}")

    def _post(self, document: dict[str, Any], *, msg_id: str) -> None:
        body = json.dumps(document).encode()
        headers = sign(body, self._secret, msg_id=msg_id, timestamp=int(time.time()))
        headers["content-type"] = "application/json"
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=self._timeout_s)
        except httpx.HTTPError as exc:
            raise AuditExportError(f"audit webhook {self.url} unreachable: {exc}") from exc
        if response.status_code >= 300:
            raise AuditExportError(f"audit webhook {self.url} answered {response.status_code}")


class PostgresForwarder:
    """Inserts each sealed entry once, keyed by (incident_id, seq), and each checkpoint
    once, keyed by its MAC."""

    name = "postgres"

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._ready = False

    def _connect(self) -> Any:
        import psycopg  # noqa: PLC0415 - only deployments that export to PostgreSQL need it

        try:
            return psycopg.connect(self._dsn, connect_timeout=5)
        except psycopg.Error as exc:
            # The DSN may carry a password: say what failed, not the DSN.
            raise AuditExportError(f"PostgreSQL audit export cannot connect: {exc}") from exc

    def send(self, sealed: Sequence[AuditEntry]) -> None:
        from psycopg.types.json import Jsonb  # noqa: PLC0415

        rows = [
            (e.incident_id, e.seq, e.at, e.kind, Jsonb(e.detail), e.prev, e.hash) for e in sealed
        ]
        self._execute(INSERT, rows)

    def send_checkpoint(self, checkpoint: Checkpoint) -> None:
        from psycopg.types.json import Jsonb  # noqa: PLC0415

        body = Jsonb(checkpoint.model_dump(mode="json"))
        self._execute(INSERT_CHECKPOINT, [(checkpoint.mac, checkpoint.number, checkpoint.at, body)])

    def _execute(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        import psycopg  # noqa: PLC0415

        try:
            with self._connect() as connection, connection.cursor() as cursor:
                if not self._ready:
                    cursor.execute(TABLE_DDL)
                    cursor.execute(CHECKPOINT_DDL)
                    self._ready = True
                cursor.executemany(statement, rows)
        except psycopg.Error as exc:
            raise AuditExportError(f"PostgreSQL audit export failed: {exc}") from exc


def read_postgres(dsn: str, incident_id: str | None = None) -> list[AuditEntry]:
    """The trail as PostgreSQL holds it, in chain order (for `bulkhead audit verify`)."""
    import psycopg  # noqa: PLC0415

    query = "SELECT incident_id, seq, at, kind, detail, prev, hash FROM bulkhead_audit"
    params: tuple[str, ...] = ()
    if incident_id is not None:
        query += " WHERE incident_id = %s"
        params = (incident_id,)
    with psycopg.connect(dsn, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute(query + " ORDER BY incident_id, seq", params)
        return [
            AuditEntry(
                incident_id=row[0],
                seq=row[1],
                at=row[2],
                kind=row[3],
                detail=row[4],
                prev=row[5],
                hash=row[6],
            )
            for row in cursor.fetchall()
        ]


def read_postgres_checkpoints(dsn: str) -> list[Checkpoint | str]:
    """Every checkpoint PostgreSQL holds, oldest first (none when the table is absent); a
    row that is not a checkpoint yields its error text."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(dsn, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bulkhead_audit_checkpoints') IS NOT NULL")
        row = cursor.fetchone()
        if row is None or not row[0]:
            return []
        cursor.execute("SELECT mac, body FROM bulkhead_audit_checkpoints ORDER BY number, at")
        return [_checkpoint_or_error(mac, body) for mac, body in cursor.fetchall()]


def _checkpoint_or_error(mac: str, body: Any) -> Checkpoint | str:
    try:
        return Checkpoint.model_validate(body)
    except ValueError as exc:
        return f"PostgreSQL checkpoint {mac}: not a checkpoint ({exc.__class__.__name__})"


def _id_part(seal_value: str) -> str:
    """A seal as a webhook-id part: `hmac-sha256:` dropped (ids are best kept plain)."""
    return seal_value.rpartition(":")[2]


def forwarders(
    *, webhook_url: str | None, webhook_secret: str | None, postgres_dsn: str | None
) -> list[AuditForwarder]:
    found: list[AuditForwarder] = []
    if webhook_url:
        if not webhook_secret:
            raise ValueError("audit_webhook_url is set: set audit_webhook_secret to sign it")
        found.append(WebhookForwarder(webhook_url, webhook_secret))
    if postgres_dsn:
        found.append(PostgresForwarder(postgres_dsn))
    return found
