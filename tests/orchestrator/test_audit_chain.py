"""The exported audit trail is tamper-evident, and `bulkhead audit verify` says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.audit_chain import chain_errors, seal
from orchestrator.audit_sink import JsonlAuditSink, read_entries
from orchestrator.cli.main import main
from workflows.state import AuditEntry


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


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    sink.write(entries("inc-a", 4))
    sink.write(entries("inc-b", 3))
    sink.write(entries("inc-a", 6)[4:])
    return sink.path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def errors_of(path: Path) -> list[str]:
    return chain_errors([e for _, e in read_entries(path) if isinstance(e, AuditEntry)])


def test_intact_trail_verifies_and_cli_exits_zero(trail: Path, capsys):
    assert errors_of(trail) == []
    assert main(["audit", "verify", str(trail)]) == 0
    assert "OK  9 entries of 2 incident(s)" in capsys.readouterr().out


def test_reexported_entries_are_dropped_by_the_sink(trail: Path):
    """Export is at-least-once; the sink keeps the first copy only."""
    before = lines(trail)
    JsonlAuditSink(trail).write(entries("inc-a", 6))  # a fresh sink rebuilds its heads
    assert lines(trail) == before


def test_edited_entry_is_detected(trail: Path, capsys):
    text = lines(trail)
    record = json.loads(text[2])
    record["detail"]["step"] = "fallback:tsc-0002"
    text[2] = json.dumps(record) + "\n"
    trail.write_text("".join(text))
    assert any("edited" in e for e in errors_of(trail))
    assert main(["audit", "verify", str(trail)]) == 1
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
    """Recomputing one entry's hash after an edit does not help: the next link breaks."""
    text = lines(trail)
    record = AuditEntry.model_validate_json(text[1])
    forged = seal(record.model_copy(update={"detail": {"n": 99}}), record.prev or "")
    text[1] = forged.model_dump_json() + "\n"
    trail.write_text("".join(text))
    assert any("does not link" in e for e in errors_of(trail))


def test_garbage_line_and_missing_file_are_reported(trail: Path, tmp_path: Path, capsys):
    with trail.open("a") as handle:
        handle.write("not json\n")
    assert main(["audit", "verify", str(trail)]) == 1
    assert main(["audit", "verify", str(tmp_path / "nope.jsonl")]) == 2
    assert "no audit file" in capsys.readouterr().err
