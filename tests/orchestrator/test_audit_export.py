"""Audit export beyond the JSONL file: a signed webhook and PostgreSQL receive the same
sealed entries (same hashes), a failed delivery is retried without a duplicate, and
`bulkhead audit verify` checks the PostgreSQL copy."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from harness import make_settings, running_worker, wait_for
from pgserver import fresh_database, needs_postgres
from standardwebhooks import Webhook
from temporalio.client import Client
from workflow_fakes import new_incident, send

from contracts.incident import AuditEntry, IncidentStatus
from orchestrator.audit.chain import chain_errors
from orchestrator.audit.export import AuditExportError, PostgresForwarder, WebhookForwarder
from orchestrator.audit.sink import ForwardingAuditSink, JsonlAuditSink, read_entries
from orchestrator.cli.main import main
from orchestrator.config import new_webhook_secret
from orchestrator.lab.traffic import TrafficLab
from orchestrator.wiring.worker import build_activities


def entries(incident: str, count: int, start: int = 1) -> list[AuditEntry]:
    return [
        AuditEntry(
            incident_id=incident, seq=n, at=f"2026-11-26T00:00:{n:02d}", kind="k", detail={"n": n}
        )
        for n in range(start, start + count)
    ]


class Receiver:
    """A SIEM-side webhook endpoint: checks signatures, can fail the first deliveries."""

    def __init__(self, secret: str, fail_first: int = 0) -> None:
        self.secret = secret
        self.verifier = Webhook(secret)
        self.fail_first = fail_first
        self.deliveries: list[dict[str, Any]] = []
        self.rejected = 0


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver(new_webhook_secret())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            try:
                state.verifier.verify(body, dict(self.headers))
            except Exception:  # noqa: BLE001 - any verification failure is a 401
                state.rejected += 1
                self.send_response(401)
            else:
                if state.fail_first > 0:
                    state.fail_first -= 1
                    self.send_response(503)
                else:
                    state.deliveries.append({"id": self.headers["webhook-id"], **json.loads(body)})
                    self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/bulkhead-audit"
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_gets_signed_sealed_entries_and_a_retry_repeats_nothing_in_the_file(
    tmp_path, receiver
):
    state, url = receiver
    state.fail_first = 1
    primary = JsonlAuditSink(tmp_path / "audit.jsonl")
    sink = ForwardingAuditSink(primary, [WebhookForwarder(url, state.secret)])
    batch = entries("inc-a", 3)
    with pytest.raises(AuditExportError, match="503"):
        sink.write(batch)  # the activity would be retried by Temporal
    sink.write(batch)
    sink.write(entries("inc-a", 1, start=4))
    in_file = [e for _, e in read_entries(primary.path)]
    assert [e.seq for e in in_file] == [1, 2, 3, 4], "the retry added nothing to the file"
    received = [AuditEntry.model_validate(e) for d in state.deliveries for e in d["entries"]]
    assert [e.hash for e in received] == [e.hash for e in in_file]
    assert chain_errors(received) == []
    assert state.rejected == 0


def test_webhook_with_the_wrong_key_is_refused_by_the_receiver(tmp_path, receiver):
    state, url = receiver
    sink = ForwardingAuditSink(
        JsonlAuditSink(tmp_path / "audit.jsonl"), [WebhookForwarder(url, new_webhook_secret())]
    )
    with pytest.raises(AuditExportError, match="401"):
        sink.write(entries("inc-b", 1))
    assert state.rejected == 1


@pytest.fixture
def postgres_dsn(postgres_cluster_dsn: str) -> str:
    return fresh_database(postgres_cluster_dsn)


@needs_postgres
async def test_a_contained_incident_lands_in_postgres_and_verifies(
    temporal_client: Client, traffic_lab: TrafficLab, postgres_dsn, monkeypatch, capsys
):
    settings = make_settings(traffic_lab.port, audit_postgres_dsn=postgres_dsn)
    params = new_incident()
    async with running_worker(temporal_client, settings, build_activities(settings)):
        await send(temporal_client, settings, params)
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.status is IncidentStatus.CONTAINED
        )

        def exported() -> int:
            with psycopg.connect(postgres_dsn) as db:
                try:
                    row = db.execute(
                        "SELECT count(*) FROM bulkhead_audit WHERE incident_id = %s",
                        (params.incident_id,),
                    ).fetchone()
                except psycopg.errors.UndefinedTable:  # the first export makes the table
                    return 0
            return int(row[0]) if row else 0

        await wait_for(temporal_client, params.incident_id, lambda v: exported() >= v.audit_total)
    in_file = [
        e
        for _, e in read_entries(settings.state_dir / "audit.jsonl")
        if isinstance(e, AuditEntry) and e.incident_id == params.incident_id
    ]
    with psycopg.connect(postgres_dsn) as db:
        hashes = [
            r[0]
            for r in db.execute(
                "SELECT hash FROM bulkhead_audit WHERE incident_id = %s ORDER BY seq",
                (params.incident_id,),
            )
        ]
    assert hashes == [e.hash for e in in_file][: len(hashes)]
    assert len(hashes) >= view.audit_total - 1
    monkeypatch.setenv("BULKHEAD_AUDIT_POSTGRES_DSN", postgres_dsn)
    # The worker's state dir: the file to compare, and the audit key it was sealed with.
    monkeypatch.setenv("BULKHEAD_STATE_DIR", str(settings.state_dir))
    assert main(["audit", "verify", "--postgres"]) == 0
    assert "OK " in capsys.readouterr().out


@needs_postgres
def test_postgres_copy_that_was_tampered_with_fails_verification(
    tmp_path, postgres_dsn, monkeypatch, capsys
):
    sink = ForwardingAuditSink(
        JsonlAuditSink(tmp_path / "a.jsonl"), [PostgresForwarder(postgres_dsn)]
    )
    sink.write(entries("inc-tamper", 3))
    sink.write(entries("inc-tamper", 3))  # a retried export inserts nothing twice
    with psycopg.connect(postgres_dsn) as db:
        count = db.execute(
            "SELECT count(*) FROM bulkhead_audit WHERE incident_id = 'inc-tamper'"
        ).fetchone()
        db.execute(
            "UPDATE bulkhead_audit SET kind = 'step.approval'"
            " WHERE incident_id = 'inc-tamper' AND seq = 2"
        )
    assert count is not None and count[0] == 3
    monkeypatch.setenv("BULKHEAD_AUDIT_POSTGRES_DSN", postgres_dsn)
    # No audit file in this state dir: the PostgreSQL copy is checked on its own.
    monkeypatch.setenv("BULKHEAD_STATE_DIR", str(tmp_path / "elsewhere"))
    assert main(["audit", "verify", "--postgres"]) == 1
    assert "inc-tamper" in capsys.readouterr().out
