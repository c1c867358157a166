"""The audit trail: a hash chain per incident, so any edit, removal or reorder shows.

Each entry's hash covers its content and the previous entry's hash; the first entry
links to a genesis hash derived from the incident id, so entries cannot be moved between
incidents either.

The chain is sealed by the sink, not in the workflow: `workflow.now()` after a local
activity can differ between a first execution and a replay, so entries the workflow
recorded are not bit-identical across replays. The sink keeps the first copy of each
entry it receives and links it; later copies of the same entry are dropped.
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


def seal(entry: AuditEntry, prev: str) -> AuditEntry:
    """The entry linked after `prev`, carrying its own hash."""
    digest = entry_hash(
        entry.incident_id,
        seq=entry.seq,
        at=entry.at,
        kind=entry.kind,
        detail=entry.detail,
        prev=prev,
    )
    return entry.model_copy(update={"prev": prev, "hash": digest})


def chain_errors(entries: Iterable[AuditEntry]) -> list[str]:
    """Every break in each incident's chain; empty when the trail is intact.

    Everything must follow in file order: a gap, a reorder, a broken link, an edited
    entry or a second copy of an entry is reported.
    """
    errors: list[str] = []
    by_incident: dict[str, list[AuditEntry]] = {}
    for entry in entries:
        by_incident.setdefault(entry.incident_id, []).append(entry)
    for incident_id, trail in by_incident.items():
        seen: dict[int, str] = {}
        expected_prev = genesis(incident_id)
        expected_seq = 1
        for entry in trail:
            where = f"{incident_id} #{entry.seq}"
            if entry.seq in seen:
                errors.append(f"{where}: appears twice (copied or replayed)")
                continue
            seen[entry.seq] = entry.hash or ""
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
                prev=entry.prev or "",
            )
            if entry.hash is None or recomputed != entry.hash:
                errors.append(f"{where}: content does not match its hash (edited)")
            expected_prev = entry.hash or ""
            expected_seq = entry.seq + 1
    return errors
