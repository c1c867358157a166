"""Audit forwarders: the sealed trail also goes to a webhook (e.g. back to the SIEM) and
to PostgreSQL when configured. Both accept the same entry twice (delivery is retried).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import httpx

from orchestrator.audit_sink import AuditForwarder
from orchestrator.webhooks import sign
from workflows.state import AuditEntry

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


class AuditExportError(Exception):
    """A forwarder could not deliver; the export activity retries the batch."""


class WebhookForwarder:
    """POSTs `{"entries": [...]}` signed with Standard Webhooks; the webhook-id is the
    last entry's hash, so a receiver can drop a repeated delivery."""

    name = "webhook"

    def __init__(self, url: str, secret: str, *, timeout_s: float = WEBHOOK_TIMEOUT_S) -> None:
        self.url = url
        self._secret = secret
        self._timeout_s = timeout_s

    def send(self, sealed: Sequence[AuditEntry]) -> None:
        body = json.dumps({"entries": [e.model_dump(mode="json") for e in sealed]}).encode()
        headers = sign(
            body, self._secret, msg_id=f"audit_{sealed[-1].hash}", timestamp=int(time.time())
        )
        headers["content-type"] = "application/json"
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=self._timeout_s)
        except httpx.HTTPError as exc:
            raise AuditExportError(f"audit webhook {self.url} unreachable: {exc}") from exc
        if response.status_code >= 300:
            raise AuditExportError(f"audit webhook {self.url} answered {response.status_code}")


class PostgresForwarder:
    """Inserts each sealed entry once, keyed by (incident_id, seq)."""

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
        import psycopg  # noqa: PLC0415
        from psycopg.types.json import Jsonb  # noqa: PLC0415

        rows = [
            (e.incident_id, e.seq, e.at, e.kind, Jsonb(e.detail), e.prev, e.hash) for e in sealed
        ]
        try:
            with self._connect() as connection, connection.cursor() as cursor:
                if not self._ready:
                    cursor.execute(TABLE_DDL)
                    self._ready = True
                cursor.executemany(INSERT, rows)
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
