"""Audit trails for the tamper tests, written through the worker's own sink
(orchestrator.wiring.worker.build_audit_sink): the key, the checkpoints and the file modes are the
ones a worker makes. The entries follow the workflow's own kinds and details
(workflows/incident.py: `step.approval` names the principal, `incident.released` ends it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contracts.incident import AuditEntry
from orchestrator.audit.checkpointer import Checkpointer
from orchestrator.audit.sink import ForwardingAuditSink, read_entries
from orchestrator.cli.main import main
from orchestrator.config import Settings
from orchestrator.wiring.worker import AUDIT_FILE, build_audit_sink


def trail_settings(state_dir: Path, **overrides: Any) -> Settings:
    # An hour: no timer fires during a test unless the test asks for a short interval.
    overrides.setdefault("audit_checkpoint_interval_s", 3600.0)
    return Settings(state_dir=state_dir, **overrides)


def worker_sink(settings: Settings) -> tuple[ForwardingAuditSink, Checkpointer]:
    sink = build_audit_sink(settings)
    assert isinstance(sink, ForwardingAuditSink)
    assert isinstance(sink.checkpoints, Checkpointer)
    return sink, sink.checkpoints


def entry(incident_id: str, seq: int, kind: str, **detail: Any) -> AuditEntry:
    return AuditEntry(
        incident_id=incident_id,
        seq=seq,
        at=f"2026-11-26T10:{seq // 60:02d}:{seq % 60:02d}+00:00",
        kind=kind,
        detail=detail,
    )


def story(incident_id: str, *, approver: str = "alice", released: bool = False) -> list[AuditEntry]:
    """One containment as the workflow records it: finding, decision, approval, apply."""
    step = "fallback:tsc-0001"
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("finding.received", {"uid": f"{incident_id}-f1"}),
        ("decision.made", {"verdict": "contain", "policy_version": "abc123"}),
        ("step.awaiting_approval", {"step": step}),
        (
            "step.approval",
            {"step": step, "principal": approver, "principal_id": f"local:{approver}"},
        ),
        ("step.approved", {"step": step}),
        ("step.applied", {"step": step}),
        ("step.verified", {"step": step}),
    ]
    if released:
        kinds.append(("incident.released", {"principal": "dora", "principal_id": "local:dora"}))
    return [entry(incident_id, n, kind, **detail) for n, (kind, detail) in enumerate(kinds, 1)]


def audit_path(state_dir: Path) -> Path:
    return state_dir / AUDIT_FILE


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rewrite(path: Path, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Drop the records `keep` refuses, as someone with write access to the file would."""
    kept = [r for r in records(path) if keep(r)]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    return kept


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`bulkhead audit verify ARGS` through the CLI entry point: exit code and stdout."""
    capsys.readouterr()
    code = main(["audit", "verify", *args])
    return code, capsys.readouterr().out


def verify_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out = verify(capsys, *args, "--json")
    document: dict[str, Any] = json.loads(out)
    return code, document


def finding_kinds(document: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {(f["kind"], f["incident_id"]) for f in document["findings"]}


def exported(state_dir: Path, incident_id: str) -> list[AuditEntry]:
    path = state_dir / AUDIT_FILE
    if not path.is_file():
        return []
    entries = [e for _, e in read_entries(path)]
    return [e for e in entries if isinstance(e, AuditEntry) and e.incident_id == incident_id]
