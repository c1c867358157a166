"""The exported audit trail is tamper-evident, and `bulkhead audit verify` says so.

The chain itself: edits, gaps, reorders and moved entries. Cuts, rewrites with re-sealing,
the checkpoints and the anchors are in test_audit_tamper.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_trails import trail_settings, worker_sink

from contracts.incident import AuditEntry
from orchestrator.audit.chain import chain_errors, chain_findings, seal
from orchestrator.audit.keys import audit_key
from orchestrator.audit.sink import JsonlAuditSink, read_entries
from orchestrator.cli.main import main


def entries(incident: str, count: int) -> list[AuditEntry]:
    return [
        AuditEntry(
            incident_id=incident,
            seq=n,
            at=f"2026-11-26T10:00:{n:02d}+00:00",
            kind="step.verified" if n % 2 else "finding.received",
            detail={"n": n, "step": "fallback:tsc-0001"},
        )
        for n in range(1, count + 1)
    ]


@pytest.fixture(autouse=True)
def no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BULKHEAD_AUDIT_KEY", raising=False)


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    """A keyed trail as a worker writes it, checkpointed at its end."""
    sink, checkpoints = worker_sink(trail_settings(tmp_path))
    sink.write(entries("inc-a", 4))
    sink.write(entries("inc-b", 3))
    sink.write(entries("inc-a", 6)[4:])
    checkpoints.close()
    return sink.primary.path


def key_of(trail: Path) -> bytes:
    key = audit_key(trail_settings(trail.parent))
    assert key is not None
    return key


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def errors_of(path: Path) -> list[str]:
    sealed = [e for _, e in read_entries(path) if isinstance(e, AuditEntry)]
    return chain_errors(sealed, key_of(path))


def verify(trail: Path) -> int:
    return main(["audit", "verify", str(trail), "--state-dir", str(trail.parent)])


def test_intact_trail_verifies_and_cli_exits_zero(trail: Path, capsys):
    assert errors_of(trail) == []
    assert verify(trail) == 0
    assert "OK  9 entries of 2 incident(s)" in capsys.readouterr().out


def test_every_entry_is_sealed_with_the_key_not_a_bare_hash(trail: Path):
    sealed = [e for _, e in read_entries(trail) if isinstance(e, AuditEntry)]
    assert all((e.hash or "").startswith("hmac-sha256:") for e in sealed)
    assert chain_errors(sealed, b"another key of thirty-two characters!!")


def test_reexported_entries_are_dropped_by_the_sink(trail: Path):
    """Export is at-least-once; the sink keeps the first copy only."""
    before = lines(trail)
    # A fresh sink rebuilds its heads from the file.
    JsonlAuditSink(trail, key=key_of(trail)).write(entries("inc-a", 6))
    assert lines(trail) == before


def test_edited_entry_is_detected(trail: Path, capsys):
    text = lines(trail)
    record = json.loads(text[2])
    record["detail"]["step"] = "fallback:tsc-0002"
    text[2] = json.dumps(record) + "\n"
    trail.write_text("".join(text))
    assert any("edited" in e for e in errors_of(trail))
    assert verify(trail) == 1
    assert "BROKEN" in capsys.readouterr().out


def test_removed_entry_is_detected(trail: Path):
    text = lines(trail)
    del text[1]
    trail.write_text("".join(text))
    assert any("missing or reordered" in e for e in errors_of(trail))


def test_reordered_entries_are_detected(trail: Path):
    text = lines(trail)
    text[1], text[2] = text[2], text[1]
    trail.write_text("".join(text))
    assert errors_of(trail)


def test_entry_moved_to_another_incident_is_detected(trail: Path):
    text = lines(trail)
    record = json.loads(text[0])
    record["incident_id"] = "inc-b"
    text[0] = json.dumps(record) + "\n"
    trail.write_text("".join(text))
    assert errors_of(trail)


def test_a_rewritten_tail_with_fresh_hashes_still_breaks_the_link(trail: Path):
    """Re-sealing one entry after an edit does not help: the next link breaks."""
    text = lines(trail)
    record = AuditEntry.model_validate_json(text[1])
    forged = seal(record.model_copy(update={"detail": {"n": 99}}), record.prev or "", key_of(trail))
    text[1] = forged.model_dump_json() + "\n"
    trail.write_text("".join(text))
    assert any("does not link" in e for e in errors_of(trail))


def test_an_unkeyed_chain_is_intact_but_reported_as_unkeyed(tmp_path: Path):
    """Trails from before the key still verify link by link, but never as plainly intact."""
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    sink.write(entries("inc-a", 3))
    sealed = [e for _, e in read_entries(sink.path) if isinstance(e, AuditEntry)]
    assert chain_errors(sealed) == []
    assert [f.kind.value for f in chain_findings(sealed)] == ["unkeyed"]


def test_garbage_line_and_missing_file_are_reported(trail: Path, tmp_path: Path, capsys):
    with trail.open("a") as handle:
        handle.write("not json\n")
    assert verify(trail) == 1
    assert main(["audit", "verify", str(tmp_path / "nope.jsonl")]) == 2
    assert "no audit file" in capsys.readouterr().err
