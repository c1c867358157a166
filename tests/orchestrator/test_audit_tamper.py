"""The audit trail cannot be quietly cut or rewritten (#16 item 4).

Each test writes a trail through the worker's own sink, tampers with the files the way
someone with write access to the state dir would (the probe's four tamperings, and the
ways round them), and runs `bulkhead audit verify` through the CLI entry point.
"""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from audit_trails import (
    audit_path,
    finding_kinds,
    records,
    rewrite,
    story,
    trail_settings,
    verify,
    verify_json,
    worker_sink,
)
from pgserver import fresh_database, needs_postgres
from standardwebhooks import Webhook

from contracts.incident import AuditEntry
from orchestrator.audit.chain import genesis, seal
from orchestrator.audit.checkpoint import Checkpoint, checkpoint_path
from orchestrator.audit.export import WebhookForwarder
from orchestrator.audit.sink import ForwardingAuditSink, JsonlAuditSink
from orchestrator.cli.main import main
from orchestrator.config import new_webhook_secret


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BULKHEAD_AUDIT_KEY", "BULKHEAD_AUDIT_POSTGRES_DSN", "BULKHEAD_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """Three incidents written in interleaved batches; inc-b released (a checkpoint at
    release), and a last checkpoint once the trail went quiet (what the timer writes).
    The file ends with inc-c #7; inc-a's last entry, #7, sits in the middle of it."""
    state_dir = tmp_path / "state"
    sink, checkpoints = worker_sink(trail_settings(state_dir))
    a, b, c = story("inc-a"), story("inc-b", released=True), story("inc-c")
    for batch in (a[:4], b[:3], c[:5], a[4:], b[3:], c[5:]):
        sink.write(batch)
    checkpoints.close()
    return state_dir


def check(capsys: pytest.CaptureFixture[str], state_dir: Path, *args: str) -> dict[str, Any]:
    """Verify, expecting findings: the exit code is 1 and the readable report says so."""
    code, out = verify(capsys, "--state-dir", str(state_dir), *args)
    assert code == 1, out
    assert "FAILED" in out
    code, document = verify_json(capsys, "--state-dir", str(state_dir), *args)
    assert code == 1
    assert document["ok"] is False
    return document


def test_an_untampered_trail_verifies_ok(state: Path, capsys):
    code, out = verify(capsys, "--state-dir", str(state))
    assert code == 0, out
    assert "OK  22 entries of 3 incident(s): intact, matching checkpoint #3" in out
    assert "sealed with the audit key" in out
    code, document = verify_json(capsys, "--state-dir", str(state))
    assert (code, document["ok"], document["findings"]) == (0, True, [])
    assert document["trail"]["keyed"] is True


def test_removing_the_last_entry_is_reported(state: Path, capsys):
    path = audit_path(state)
    last = records(path)[-1]
    rewrite(path, lambda r: r != last)
    document = check(capsys, state)
    assert finding_kinds(document) == {("removed-tail", "inc-c")}
    [finding] = document["findings"]
    assert finding["seq"] == 7
    assert "inc-c: entry #7 missing" in finding["message"]


def test_removing_the_last_entry_of_one_incident_is_reported(state: Path, capsys):
    path = audit_path(state)
    rewrite(path, lambda r: (r["incident_id"], r["seq"]) != ("inc-a", 7))
    document = check(capsys, state)
    assert finding_kinds(document) == {("removed-tail", "inc-a")}
    assert "inc-a: entry #7 missing" in document["findings"][0]["message"]


def test_removing_every_entry_of_one_incident_is_reported(state: Path, capsys):
    path = audit_path(state)
    rewrite(path, lambda r: r["incident_id"] != "inc-b")
    code, out = verify(capsys, "--state-dir", str(state))
    assert code == 1
    assert "removed-incident  inc-b: no entry left in the trail" in out
    document = check(capsys, state)
    assert finding_kinds(document) == {("removed-incident", "inc-b")}


def test_removing_the_tail_of_the_file_names_each_cut_chain(state: Path, capsys):
    path = audit_path(state)
    kept = records(path)[:-4]  # inc-b #7-#8 and inc-c #6-#7
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    document = check(capsys, state)
    assert finding_kinds(document) == {("removed-tail", "inc-b"), ("removed-tail", "inc-c")}
    messages = " | ".join(f["message"] for f in document["findings"])
    assert "inc-b: entries #7-#8 missing" in messages
    assert "inc-c: entries #6-#7 missing" in messages


def approver_renamed_and_rehashed(path: Path, *, key: bytes | None) -> None:
    """The probe: rename the approver of inc-a, then re-seal inc-a's chain from there on
    (plainly as before the key, or imitating the keyed format with a guessed key)."""
    rows = records(path)
    prev = genesis("inc-a")
    for index, row in enumerate(rows):
        if row["incident_id"] != "inc-a":
            continue
        entry = AuditEntry.model_validate(row)
        if entry.kind == "step.approval":
            entry = entry.model_copy(update={"detail": {**entry.detail, "principal": "mallory"}})
        resealed = seal(entry, prev, key)
        rows[index] = resealed.model_dump(mode="json")
        prev = resealed.hash or ""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_an_approver_renamed_and_the_chain_rehashed_is_caught_by_the_key(state: Path, capsys):
    path = audit_path(state)
    approver_renamed_and_rehashed(path, key=None)
    assert "mallory" in path.read_text()
    document = check(capsys, state)
    kinds = {kind for kind, _ in finding_kinds(document)}
    # The re-hashed chain links up, but it is no longer sealed with the key, and its head
    # is not the one the checkpoints recorded.
    assert kinds == {"unkeyed", "rewritten"}
    assert {f["incident_id"] for f in document["findings"]} == {"inc-a"}
    # --allow-unkeyed accepts old trails, not a keyed trail someone re-hashed.
    check(capsys, state, "--allow-unkeyed")


def test_a_rehash_that_imitates_the_keyed_format_is_caught_too(state: Path, capsys):
    path = audit_path(state)
    approver_renamed_and_rehashed(path, key=b"a guess at the key, 32 characters long")
    document = check(capsys, state)
    edited = [f for f in document["findings"] if f["kind"] == "edited"]
    assert [f["seq"] for f in edited] == [1, 2, 3, 4, 5, 6, 7]
    assert ("rewritten", "inc-a") in finding_kinds(document)


def test_a_deleted_checkpoint_shows(state: Path, capsys):
    checkpoints = checkpoint_path(audit_path(state))
    lines = checkpoints.read_text().splitlines(keepends=True)
    assert len(lines) == 3  # opened, release (inc-b), the quiet-trail one
    checkpoints.write_text(lines[0] + lines[2])
    document = check(capsys, state)
    assert [f["kind"] for f in document["findings"]] == ["checkpoint-missing"]
    assert "checkpoint #2 missing before #3" in document["findings"][0]["message"]


def test_a_keyed_trail_without_its_checkpoint_file_shows(state: Path, capsys):
    checkpoint_path(audit_path(state)).unlink()
    document = check(capsys, state)
    assert [f["kind"] for f in document["findings"]] == ["checkpoint-missing"]
    assert "no checkpoint, yet the trail is keyed" in document["findings"][0]["message"]


def test_a_forged_checkpoint_shows(state: Path, capsys):
    """Lowering a head in the checkpoint file (to hide a cut) breaks its MAC."""
    path = checkpoint_path(audit_path(state))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row["heads"] = [h for h in row["heads"] if h["incident_id"] != "inc-b"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rewrite(audit_path(state), lambda r: r["incident_id"] != "inc-b")
    document = check(capsys, state)
    assert {f["kind"] for f in document["findings"]} == {"checkpoint-forged"}
    assert len(document["findings"]) == 2  # the two checkpoints that had inc-b's head


def test_verifying_a_keyed_trail_needs_the_key(state: Path, tmp_path: Path, capsys):
    (state / "audit-key").rename(tmp_path / "key-kept-elsewhere")
    capsys.readouterr()
    assert main(["audit", "verify", "--state-dir", str(state)]) == 2
    assert "this trail is sealed with the audit key" in capsys.readouterr().err
    code, out = verify(
        capsys, "--state-dir", str(state), "--key-file", str(tmp_path / "key-kept-elsewhere")
    )
    assert code == 0, out


def test_another_key_fails_every_entry_and_checkpoint(state: Path, tmp_path: Path, capsys):
    other = tmp_path / "other-key"
    other.write_text("another key, thirty-two characters or more\n")
    document = check(capsys, state, "--key-file", str(other))
    kinds = [f["kind"] for f in document["findings"]]
    assert kinds.count("edited") == 22
    assert kinds.count("checkpoint-forged") == 3


def test_a_trail_from_before_the_key_is_reported_unkeyed_not_ok(tmp_path: Path, capsys):
    state_dir = tmp_path / "old"
    JsonlAuditSink(audit_path(state_dir)).write(story("inc-old"))
    code, out = verify(capsys, "--state-dir", str(state_dir))
    assert code == 1
    assert "UNKEYED unkeyed  inc-old: 7 entries carry a plain SHA-256 hash" in out
    code, out = verify(capsys, "--state-dir", str(state_dir), "--allow-unkeyed")
    assert code == 0
    assert "UNKEYED" in out
    assert "unkeyed entries accepted (--allow-unkeyed)" in out


def test_an_old_trail_continued_with_the_key_keeps_its_unkeyed_part_named(tmp_path: Path, capsys):
    state_dir = tmp_path / "upgraded"
    JsonlAuditSink(audit_path(state_dir)).write(story("inc-old")[:3])
    sink, checkpoints = worker_sink(trail_settings(state_dir))
    sink.write(story("inc-old")[3:] + story("inc-new"))
    checkpoints.close()
    code, document = verify_json(capsys, "--state-dir", str(state_dir))
    assert code == 1
    assert finding_kinds(document) == {("unkeyed", "inc-old")}
    assert "3 entries carry a plain SHA-256 hash" in document["findings"][0]["message"]
    assert verify(capsys, "--state-dir", str(state_dir), "--allow-unkeyed")[0] == 0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_audit_files_and_the_key_are_private(state: Path, tmp_path: Path):
    audit = audit_path(state)
    assert mode(audit) == 0o600
    assert mode(checkpoint_path(audit)) == 0o600
    assert mode(state / "audit-key") == 0o600
    # A file an older version made world-readable is tightened on the next write.
    old = tmp_path / "old" / "audit.jsonl"
    JsonlAuditSink(old).write(story("inc-x")[:1])
    old.chmod(0o644)
    sink, _ = worker_sink(trail_settings(old.parent))
    sink.write(story("inc-x")[1:2])
    assert mode(old) == 0o600


def test_a_periodic_checkpoint_follows_the_last_write(tmp_path: Path, capsys):
    """Entries nothing follows are checkpointed by the timer, not left uncovered."""
    state_dir = tmp_path / "quiet"
    sink, _ = worker_sink(trail_settings(state_dir, audit_checkpoint_interval_s=0.05))
    entries = story("inc-q")
    sink.write(entries[:2])  # the trail's first write: the "opened" checkpoint
    sink.write(entries[2:])
    path = checkpoint_path(audit_path(state_dir))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(path.read_text().splitlines()) < 2:
        time.sleep(0.02)
    opened, periodic = (Checkpoint.model_validate_json(x) for x in path.read_text().splitlines())
    assert (opened.reason, opened.heads[0].seq) == ("opened", 2)
    assert (periodic.reason, periodic.heads[0].seq, periodic.heads[0].count) == ("periodic", 7, 7)
    rewrite(audit_path(state_dir), lambda r: r["seq"] != 7)
    assert ("removed-tail", "inc-q") in finding_kinds(check(capsys, state_dir))


# --- The anchors: PostgreSQL and the signed webhook --------------------------------------


@pytest.fixture
def anchored(tmp_path: Path, postgres_cluster_dsn: str) -> tuple[Path, str]:
    """A trail anchored in PostgreSQL; inc-c written after the last checkpoint (inc-b's
    release), so only PostgreSQL has seen its end."""
    dsn = fresh_database(postgres_cluster_dsn)
    state_dir = tmp_path / "anchored"
    sink, _ = worker_sink(trail_settings(state_dir, audit_postgres_dsn=dsn))
    for batch in (story("inc-a"), story("inc-b", released=True), story("inc-c")):
        sink.write(batch)
    return state_dir, dsn


def pg_check(capsys, state_dir: Path, dsn: str, monkeypatch) -> dict[str, Any]:
    monkeypatch.setenv("BULKHEAD_AUDIT_POSTGRES_DSN", dsn)
    return check(capsys, state_dir, "--postgres")


@needs_postgres
def test_an_untampered_trail_matches_its_postgres_anchor(anchored, capsys, monkeypatch):
    state_dir, dsn = anchored
    monkeypatch.setenv("BULKHEAD_AUDIT_POSTGRES_DSN", dsn)
    code, document = verify_json(capsys, "--state-dir", str(state_dir), "--postgres")
    assert (code, document["findings"]) == (0, [])
    assert "PostgreSQL" in document["anchors"]
    assert document["latest_checkpoint"]["reason"] == "release"


@needs_postgres
def test_postgres_names_an_entry_cut_after_the_last_checkpoint(anchored, capsys, monkeypatch):
    state_dir, dsn = anchored
    rewrite(audit_path(state_dir), lambda r: (r["incident_id"], r["seq"]) != ("inc-c", 7))
    # The local checkpoints never saw inc-c's end: only the note says it is uncovered.
    code, out = verify(capsys, "--state-dir", str(state_dir))
    assert code == 0
    assert "newer than the latest checkpoint" in out
    document = pg_check(capsys, state_dir, dsn, monkeypatch)
    assert finding_kinds(document) == {("removed-tail", "inc-c")}
    assert "PostgreSQL holds entry #7" in document["findings"][0]["message"]


@needs_postgres
def test_postgres_catches_a_cut_covered_up_in_the_local_checkpoints(anchored, capsys, monkeypatch):
    """Remove a released incident and the checkpoint that recorded it: the local files
    agree with each other, PostgreSQL does not."""
    state_dir, dsn = anchored
    rewrite(audit_path(state_dir), lambda r: r["incident_id"] != "inc-b")
    rewrite(checkpoint_path(audit_path(state_dir)), lambda r: r["reason"] != "release")
    assert verify(capsys, "--state-dir", str(state_dir))[0] == 0
    document = pg_check(capsys, state_dir, dsn, monkeypatch)
    assert finding_kinds(document) == {
        ("removed-incident", "inc-b"),
        ("checkpoint-missing", None),
    }
    messages = " | ".join(f["message"] for f in document["findings"])
    assert "checkpoint #2" in messages
    assert "is in PostgreSQL but not in checkpoint file" in messages


@needs_postgres
def test_postgres_catches_a_rehashed_chain_against_its_copy(anchored, capsys, monkeypatch):
    state_dir, dsn = anchored
    approver_renamed_and_rehashed(audit_path(state_dir), key=None)
    document = pg_check(capsys, state_dir, dsn, monkeypatch)
    rewritten = {f["seq"] for f in document["findings"] if f["kind"] == "rewritten"}
    assert rewritten >= {4, 5, 6, 7}  # the renamed approval and every entry re-sealed after it


# A Standard Webhooks receiver (the SIEM side): keeps what verifies, refuses the rest.
@pytest.fixture
def receiver() -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    secret = new_webhook_secret()
    verifier = Webhook(secret)
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            verifier.verify(body, dict(self.headers))  # raises: the test sees no delivery
            received.append({"id": self.headers["webhook-id"], **json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/audit", secret, received
    finally:
        server.shutdown()
        server.server_close()


def test_the_webhook_anchor_gets_each_entry_and_each_signed_checkpoint(tmp_path, receiver):
    url, secret, received = receiver
    settings = trail_settings(
        tmp_path / "hooked", audit_webhook_url=url, audit_webhook_secret=secret
    )
    sink, _ = worker_sink(settings)
    assert isinstance(sink, ForwardingAuditSink)
    assert [f.name for f in sink.forwarders] == ["webhook"]
    assert isinstance(sink.forwarders[0], WebhookForwarder)
    written = story("inc-w", released=True)
    sink.write(written[:3])  # the trail's first write: "opened"
    sink.write(written[3:])  # with the release: "release"
    entries = [e for d in received for e in d.get("entries", [])]
    checkpoints = [
        Checkpoint.model_validate(d["checkpoint"]) for d in received if "checkpoint" in d
    ]
    assert [(e["incident_id"], e["seq"]) for e in entries] == [("inc-w", n) for n in range(1, 9)]
    assert [c.reason for c in checkpoints] == ["opened", "release"]
    head = checkpoints[-1].heads[0]
    assert (head.incident_id, head.seq, head.count, head.hash) == (
        "inc-w",
        8,
        8,
        entries[-1]["hash"],
    )
    local = checkpoint_path(audit_path(settings.state_dir)).read_text().splitlines()
    assert [Checkpoint.model_validate_json(x).mac for x in local] == [c.mac for c in checkpoints]
    # The id names the checkpoint by its MAC, so a receiver can drop a repeated delivery.
    ids = [d["id"] for d in received if "checkpoint" in d]
    assert ids[-1] == "audit_checkpoint_" + checkpoints[-1].mac.removeprefix("hmac-sha256:")
