"""The audit trail: a hash chain per incident, so any edit, removal or reorder shows.

Each entry's hash covers its content and the previous entry's hash; the first entry
links to a genesis hash derived from the incident id, so entries cannot be moved between
incidents either. Pure functions: the workflow and `bulkhead audit verify` share them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from workflows.state import AuditEntry


def genesis(incident_id: str) -> str:
    return hashlib.sha256(f"bulkhead-audit:{incident_id}".encode()).hexdigest()


def entry_hash(
    incident_id: str, *, seq: int, at: str, kind: str, detail: dict[str, Any], prev: str
) -> str:
    canonical = json.dumps(
        {
            "incident_id": incident_id,
            "seq": seq,
            "at": at,
            "kind": kind,
            "detail": detail,
            "prev": prev,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def link(
    incident_id: str, *, seq: int, at: str, kind: str, detail: dict[str, Any], prev: str
) -> AuditEntry:
    # Round-trip the detail through JSON so the hash covers exactly what gets exported.
    detail = json.loads(json.dumps(detail, default=str))
    return AuditEntry(
        incident_id=incident_id,
        seq=seq,
        at=at,
        kind=kind,
        detail=detail,
        prev=prev,
        hash=entry_hash(incident_id, seq=seq, at=at, kind=kind, detail=detail, prev=prev),
    )


def chain_errors(entries: Iterable[AuditEntry]) -> list[str]:
    """Every break in each incident's chain; empty when the trail is intact.

    Exact re-exports of an entry (same seq and hash, e.g. after an activity retry) are not
    breaks; anything else out of place is.
    """
    errors: list[str] = []
    by_incident: dict[str, list[AuditEntry]] = {}
    for entry in entries:
        by_incident.setdefault(entry.incident_id, []).append(entry)
    for incident_id, trail in by_incident.items():
        expected_prev = genesis(incident_id)
        expected_seq = 1
        last: AuditEntry | None = None
        for entry in trail:
            if last is not None and entry.seq == last.seq and entry.hash == last.hash:
                continue
            where = f"{incident_id} #{entry.seq}"
            if entry.seq != expected_seq:
                errors.append(f"{where}: expected entry #{expected_seq} (missing or reordered)")
            if entry.prev != expected_prev:
                errors.append(f"{where}: does not link to the previous entry")
            recomputed = entry_hash(
                incident_id,
                seq=entry.seq,
                at=entry.at,
                kind=entry.kind,
                detail=entry.detail,
                prev=entry.prev,
            )
            if recomputed != entry.hash:
                errors.append(f"{where}: content does not match its hash (edited)")
            expected_prev = entry.hash
            expected_seq = entry.seq + 1
            last = entry
    return errors
