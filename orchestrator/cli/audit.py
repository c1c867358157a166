"""`bulkhead audit verify [FILE] [--postgres] [--json]`: check the audit trail's chains and
compare it with its anchors (the checkpoint file beside it, and PostgreSQL's copy).

Exit 0: intact. 1: a finding (an edit, a cut, a rewrite, a deleted checkpoint; also an
unkeyed trail, unless --allow-unkeyed). 2: nothing could be verified (no file, no key
for a keyed trail, PostgreSQL unreadable).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.incident import AuditEntry
from orchestrator.audit.chain import FindingKind, is_keyed
from orchestrator.audit.checkpoint import Checkpoint, checkpoint_path, read_checkpoints
from orchestrator.audit.shared import settled_sizes
from orchestrator.audit.sink import read_entries
from orchestrator.audit.verify import CheckpointStore, Trail, Verdict, verify_trail

POSTGRES = "PostgreSQL"


@dataclass(frozen=True)
class VerifyRequest:
    file: Path
    # False when FILE is the default path: then with --postgres a missing file means
    # "verify the PostgreSQL copy alone" (a host without the worker's state dir).
    file_named: bool
    key: bytes | None
    postgres_dsn: str | None = None
    allow_unkeyed: bool = False
    as_json: bool = False


class CannotVerifyError(Exception):
    """Nothing to verify, or no way to: exit 2 with this message."""


def verify(request: VerifyRequest) -> int:
    try:
        trail, stores, anchor = _load(request)
        _require_key(request.key, trail, stores, anchor)
    except CannotVerifyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdict = verify_trail(trail, key=request.key, stores=stores, anchor=anchor)
    ok = verdict.ok(allow_unkeyed=request.allow_unkeyed)
    if request.as_json:
        print(json.dumps(as_document(verdict, ok=ok), indent=2))
    else:
        print("\n".join(as_text(verdict, ok=ok, allow_unkeyed=request.allow_unkeyed)))
    return 0 if ok else 1


def _load(request: VerifyRequest) -> tuple[Trail, list[CheckpointStore], Trail | None]:
    if not request.file.is_file() and (request.file_named or request.postgres_dsn is None):
        raise CannotVerifyError(f"no audit file at {request.file}")
    anchor: Trail | None = None
    stores: list[CheckpointStore] = []
    if request.postgres_dsn is not None:
        anchor, pg_checkpoints = _read_postgres(request.postgres_dsn)
        stores.append(CheckpointStore(POSTGRES, pg_checkpoints, ordered=False))
    if not request.file.is_file():
        assert anchor is not None  # noqa: S101 - checked above: no file means --postgres
        return anchor, stores, None  # the PostgreSQL copy is the trail
    beside = checkpoint_path(request.file)
    try:
        # Workers may be appending: read both files as they were at one settled moment.
        trail_size, beside_size = settled_sizes(request.file, beside)
        trail = _read_file(request.file, trail_size)
        local = list(read_checkpoints(beside, beside_size)) if beside.is_file() else []
    except OSError as exc:  # e.g. a 0600 trail owned by the worker's user
        raise CannotVerifyError(f"cannot read the audit trail: {exc}") from exc
    stores.insert(0, CheckpointStore(f"checkpoint file {beside}", local))
    return trail, stores, anchor


def _read_file(path: Path, limit: int) -> Trail:
    trail = Trail(source=str(path), entries=[])
    for _, entry in read_entries(path, limit):
        if isinstance(entry, AuditEntry):
            trail.entries.append(entry)
        else:
            trail.unreadable.append(entry)
    return trail


def _read_postgres(dsn: str) -> tuple[Trail, list[Checkpoint | str]]:
    # psycopg is only needed by deployments that export to PostgreSQL.
    from orchestrator.audit.export import read_postgres, read_postgres_checkpoints  # noqa: PLC0415

    try:
        return Trail(POSTGRES, read_postgres(dsn)), list(read_postgres_checkpoints(dsn))
    except Exception as exc:  # any driver error is reported the same way
        raise CannotVerifyError(f"cannot read the audit tables: {exc}") from exc


def _require_key(
    key: bytes | None, trail: Trail, stores: list[CheckpointStore], anchor: Trail | None
) -> None:
    if key is not None:
        return
    copies = [trail, *([anchor] if anchor is not None else [])]
    keyed = any(is_keyed(e.hash) for copy in copies for e in copy.entries)
    if keyed or any(s.readable for s in stores):
        raise CannotVerifyError(
            "this trail is sealed with the audit key: set BULKHEAD_AUDIT_KEY, pass"
            " --key-file, or --state-dir with the worker's state dir (audit-key)"
        )


def _sealing(trail: Trail) -> str:
    keyed = sum(1 for e in trail.entries if is_keyed(e.hash))
    if keyed == len(trail.entries):
        return "sealed with the audit key (HMAC-SHA256)"
    if keyed == 0:
        return "UNKEYED (plain SHA-256: anyone who can write the file can re-hash it)"
    return f"partly keyed ({keyed} of {len(trail.entries)} entries)"


def as_text(verdict: Verdict, *, ok: bool, allow_unkeyed: bool) -> list[str]:
    trail = verdict.trail
    size = f"{len(trail.entries)} entries of {trail.incidents} incident(s)"
    lines = [f"trail    {trail.source}: {size}, {_sealing(trail)}"]
    lines.append(f"anchors  {'; '.join(verdict.anchors) or 'none'}")
    if verdict.latest is not None:
        latest = verdict.latest
        lines.append(f"latest   checkpoint #{latest.number} at {latest.at} ({latest.reason})")
    width = max((len(f.kind.value) for f in verdict.findings), default=0)
    for finding in verdict.findings:
        tag = "UNKEYED" if finding.kind is FindingKind.UNKEYED else "BROKEN "
        lines.append(f"{tag} {finding.kind.value:<{width}}  {finding.message}")
    lines += [f"note     {note}" for note in verdict.notes]
    if ok:
        unkeyed = any(f.kind is FindingKind.UNKEYED for f in verdict.findings)
        how = "intact; unkeyed entries accepted (--allow-unkeyed)" if unkeyed else "intact"
        compared = f", matching checkpoint #{verdict.latest.number}" if verdict.latest else ""
        lines.append(f"OK  {size}: {how}{compared}")
    else:
        hint = "" if allow_unkeyed else " (an intact old unkeyed trail passes --allow-unkeyed)"
        unkeyed_only = all(f.kind is FindingKind.UNKEYED for f in verdict.findings)
        lines.append(
            f"FAILED  {len(verdict.findings)} finding(s) in {size}"
            + (hint if unkeyed_only else ": the trail was cut or changed, or cannot be trusted")
        )
    return lines


def as_document(verdict: Verdict, *, ok: bool) -> dict[str, Any]:
    trail = verdict.trail
    latest = verdict.latest
    return {
        "ok": ok,
        "trail": {
            "source": trail.source,
            "entries": len(trail.entries),
            "incidents": trail.incidents,
            "keyed": trail.keyed,
        },
        "anchors": verdict.anchors,
        "latest_checkpoint": (
            None
            if latest is None
            else {"number": latest.number, "at": latest.at, "reason": latest.reason}
        ),
        "findings": [
            {"kind": f.kind.value, "incident_id": f.incident_id, "seq": f.seq, "message": f.message}
            for f in verdict.findings
        ],
        "notes": verdict.notes,
    }
