"""Several worker processes on one host share one state dir, so one audit trail: each
continues the chains and the checkpoint sequence the others wrote, and `bulkhead audit
verify` finds the trail intact (docs/DEPLOYMENT.md, "Where state lives").

Two sinks built as two workers build theirs stand for two processes in the first tests;
the last runs real processes that write at once.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from audit_trails import entry, story, trail_settings, worker_sink

from contracts.incident import AuditEntry
from orchestrator.audit.chain import chain_errors
from orchestrator.audit.checkpoint import Checkpoint, read_checkpoints
from orchestrator.audit.keys import audit_key
from orchestrator.audit.shared import trail_lock
from orchestrator.audit.sink import read_entries
from orchestrator.cli.main import main
from orchestrator.wiring.worker import AUDIT_FILE


@pytest.fixture(autouse=True)
def no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BULKHEAD_AUDIT_KEY", raising=False)


def verify(state: Path) -> int:
    return main(["audit", "verify", str(state / AUDIT_FILE), "--state-dir", str(state)])


def sealed(state: Path) -> list[AuditEntry]:
    return [e for _, e in read_entries(state / AUDIT_FILE) if isinstance(e, AuditEntry)]


def test_an_incident_continued_by_another_worker_keeps_one_chain(tmp_path: Path, capsys):
    first, first_checkpoints = worker_sink(trail_settings(tmp_path))
    second, second_checkpoints = worker_sink(trail_settings(tmp_path))
    told = story("inc-a", released=True)
    second.write(story("inc-b")[:2])  # the second worker has read the trail before inc-a
    first.write(told[:3])
    second.write(told[3:6])  # inc-a's task moved to the second worker
    first.write(told[6:])  # and back
    second.write(story("inc-b")[2:])
    first_checkpoints.close()
    second_checkpoints.close()

    assert verify(tmp_path) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert f"OK  {len(told) + len(story('inc-b'))} entries of 2 incident(s)" in out
    checkpoints = read_checkpoints(tmp_path / "audit.checkpoints.jsonl")
    numbers = [c.number for c in checkpoints if isinstance(c, Checkpoint)]
    assert numbers == list(range(1, len(numbers) + 1)), "one checkpoint sequence"


def test_an_export_retried_on_another_worker_is_not_written_twice(tmp_path: Path, capsys):
    first, _ = worker_sink(trail_settings(tmp_path))
    second, _ = worker_sink(trail_settings(tmp_path))
    second.write(story("inc-b")[:1])
    told = story("inc-a")
    first.write(told[:4])
    # The activity timed out on the first worker after its write; Temporal retried the
    # same batch on the second.
    second.write(told[:4])
    second.write(told[4:])
    assert [(e.incident_id, e.seq) for e in sealed(tmp_path) if e.incident_id == "inc-a"] == [
        ("inc-a", n) for n in range(1, len(told) + 1)
    ]
    assert verify(tmp_path) == 0, capsys.readouterr().out


def _write_as_a_worker(state: str, worker: int, incidents: int, rounds: int) -> None:
    """Every incident's entries alternate between the two workers, as its workflow tasks
    would after restarts; each entry waits for the one before it, as the workflow's next
    export does. Every fourth is a release, which writes a checkpoint at once, so the two
    processes also number checkpoints at the same moments."""
    sink, checkpoints = worker_sink(trail_settings(Path(state)))
    for n in range(rounds):
        for i in range(incidents):
            incident, seq = f"inc-{i}", 2 * n + worker
            kind = "incident.released" if seq % 4 == 0 else "finding.received"
            while _count(Path(state), incident) < seq - 1:
                time.sleep(0.001)
            sink.write([entry(incident, seq, kind, n=n)])
    checkpoints.close()


def _count(state: Path, incident: str) -> int:
    path = state / AUDIT_FILE
    if not path.exists():
        return 0
    return sum(
        1 for _, e in read_entries(path) if isinstance(e, AuditEntry) and e.incident_id == incident
    )


def test_two_worker_processes_writing_at_once_leave_one_intact_trail(tmp_path: Path, capsys):
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_as_a_worker, args=(str(tmp_path), worker, 4, 15))
        for worker in (1, 2)
    ]
    for process in workers:
        process.start()
    try:
        for process in workers:
            process.join(timeout=120)
            assert process.exitcode == 0
    finally:
        for process in workers:
            if process.is_alive():
                process.terminate()
    entries = sealed(tmp_path)
    assert len(entries) == 4 * 30
    assert verify(tmp_path) == 0, capsys.readouterr().out


def test_a_line_torn_by_a_dead_writer_neither_swallows_nor_breaks_what_follows(
    tmp_path: Path, capsys
):
    first, _ = worker_sink(trail_settings(tmp_path))
    first.write(story("inc-a")[:2])
    with (tmp_path / AUDIT_FILE).open("a") as trail:
        trail.write('{"incident_id":"inc-a","seq":3,"at":"2026-')  # SIGKILLed mid-line
    second, _ = worker_sink(trail_settings(tmp_path))
    second.write(story("inc-a")[2:4])
    first.write(story("inc-a")[4:5])

    key = audit_key(trail_settings(tmp_path))
    assert [e.seq for e in sealed(tmp_path)] == [1, 2, 3, 4, 5]
    assert chain_errors(sealed(tmp_path), key) == []
    assert verify(tmp_path) == 1  # the torn line itself is reported, and only it
    out = capsys.readouterr().out
    assert "line 3: not an audit entry" in out
    assert "unlinked" not in out


def _try_lock(lock_file: str) -> bool:
    """Whether another process could take the trail's lock now."""
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_while_one_worker_seals_no_other_process_can(tmp_path: Path):
    trail = tmp_path / AUDIT_FILE
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as other, trail_lock(trail) as held:
        assert other.apply(_try_lock, (str(held.path),)) is False
        with trail_lock(trail):  # re-entrant: the checkpointer reads heads inside a write
            pass
        assert other.apply(_try_lock, (str(held.path),)) is False
    with context.Pool(1) as other:
        assert other.apply(_try_lock, (str(trail_lock(trail).path),)) is True


def test_an_entry_holding_a_unicode_line_separator_is_read_back_whole(tmp_path: Path, capsys):
    told = story("inc-a")
    odd = [e.model_copy(update={"detail": {**e.detail, "title": "a\u2028b\x85c"}}) for e in told]
    first, _ = worker_sink(trail_settings(tmp_path))
    first.write(odd[:3])
    second, _ = worker_sink(trail_settings(tmp_path))  # reads them back from the file
    second.write(odd[:3])  # a retried export: already there
    second.write(odd[3:])
    assert [e.seq for e in sealed(tmp_path)] == list(range(1, len(told) + 1))
    assert verify(tmp_path) == 0, capsys.readouterr().out


def test_an_append_that_fails_midway_leaves_the_next_batch_consistent(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
):
    sink, checkpoints = worker_sink(trail_settings(tmp_path))
    told = story("inc-a")
    sink.write(told[:2])

    def no_sync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("orchestrator.audit.checkpoint.os.fsync", no_sync)
    with pytest.raises(OSError):
        sink.write(told[2:4])  # written, but not known to be on disk: the export fails
    monkeypatch.undo()
    sink.write(told[2:4])  # Temporal retries the batch
    sink.write(told[4:])
    checkpoints.close()
    assert [e.seq for e in sealed(tmp_path)] == list(range(1, len(told) + 1))
    assert verify(tmp_path) == 0, capsys.readouterr().out


def test_a_restarted_worker_answers_a_retried_export_without_reading_the_whole_trail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    before, _ = worker_sink(trail_settings(tmp_path))
    told = story("inc-a")
    written = before.primary.seal(told)
    after, _ = worker_sink(trail_settings(tmp_path))  # the worker restarted

    def whole_trail(path: Path) -> None:
        raise AssertionError("read the whole trail, holding every worker's lock")

    # Forwarders need the sealed copies of a retried batch: the file's newest entries are
    # remembered from the first look, not searched for entry by entry.
    after.primary.heads()
    monkeypatch.setattr("orchestrator.audit.sink.read_entries", whole_trail)
    assert after.primary.seal(told[:3]) == written[:3]


def _seal_slowly(state: str) -> None:
    """A worker whose append takes a while: half a line, a pause, the rest."""
    import orchestrator.audit.sink as sink_module  # noqa: PLC0415 - patched in this process

    def append_in_halves(path: Path, text: str) -> None:
        with path.open("a") as trail:
            trail.write(text[: len(text) // 2])
            trail.flush()
            time.sleep(1.5)
            trail.write(text[len(text) // 2 :])

    sink_module.append_private = append_in_halves  # type: ignore[assignment]
    sink, _ = worker_sink(trail_settings(Path(state)))
    sink.write(story("inc-a")[3:4])


def test_verify_on_a_live_trail_reads_no_half_written_entry(tmp_path: Path, capsys):
    first, checkpoints = worker_sink(trail_settings(tmp_path))
    first.write(story("inc-a")[:3])
    checkpoints.close()
    size = (tmp_path / AUDIT_FILE).stat().st_size
    writer = multiprocessing.get_context("spawn").Process(
        target=_seal_slowly, args=(str(tmp_path),)
    )
    writer.start()
    try:
        while (tmp_path / AUDIT_FILE).stat().st_size == size:  # half of it is written
            assert writer.is_alive(), "the writer died"
            time.sleep(0.01)
        assert verify(tmp_path) == 0, capsys.readouterr().out  # waits for the append
    finally:
        writer.join(timeout=30)
        if writer.is_alive():
            writer.terminate()
    assert "OK  4 entries" in capsys.readouterr().out
