"""`bulkhead audit verify [FILE] [--postgres]`: check an exported audit trail's hash chains."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestrator.audit_chain import chain_errors
from orchestrator.audit_sink import read_entries
from workflows.state import AuditEntry


def verify(path: Path) -> int:
    if not path.is_file():
        print(f"error: no audit file at {path}", file=sys.stderr)
        return 2
    entries: list[AuditEntry] = []
    problems: list[str] = []
    for _, entry in read_entries(path):
        if isinstance(entry, AuditEntry):
            entries.append(entry)
        else:
            problems.append(entry)
    return report(entries, problems)


def verify_postgres(dsn: str) -> int:
    from orchestrator.audit_export import read_postgres  # noqa: PLC0415 - psycopg is optional

    try:
        entries = read_postgres(dsn)
    except Exception as exc:  # noqa: BLE001 - any driver error is reported the same way
        print(f"error: cannot read the audit table: {exc}", file=sys.stderr)
        return 2
    return report(entries, [])


def report(entries: list[AuditEntry], problems: list[str]) -> int:
    problems = problems + chain_errors(entries)
    incidents = len({e.incident_id for e in entries})
    if problems:
        for problem in problems:
            print(f"BROKEN  {problem}")
        print(
            f"{len(problems)} problem(s) in {len(entries)} entries of {incidents} incident(s)",
            file=sys.stderr,
        )
        return 1
    print(f"OK  {len(entries)} entries of {incidents} incident(s) form intact hash chains")
    return 0
