"""The audit trail: a keyed hash chain per incident, so any edit, removal or reorder shows.

Each entry's seal covers its content and the previous entry's seal; the first entry
links to a genesis value derived from the incident id, so entries cannot be moved between
incidents either. The seal is an HMAC-SHA256 under the audit key (orchestrator/
audit_keys.py), written `hmac-sha256:<hex>`: without the key, an edited entry cannot be
re-sealed, so "edit and re-hash the chain" shows. Trails written before the key existed
carry a plain SHA-256 hex digest; they are still checked link by link, and reported as
unkeyed, never as intact. A chain cut at its end is not visible here: that is what the
checkpoints and anchors are for (orchestrator/audit/checkpoint.py, audit_verify.py).

The chain is sealed by the sink, not in the workflow: `workflow.now()` after a local
activity can differ between a first execution and a replay, so entries the workflow
recorded are not bit-identical across replays. The sink keeps the first copy of each
entry it receives and links it; later copies of the same entry are dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from contracts.incident import AuditEntry

KEYED_PREFIX = "hmac-sha256:"
# Entries and checkpoints share the key; a domain tag keeps one from passing as the other.
ENTRY_DOMAIN = b"bulkhead-audit-entry\n"


class FindingKind(StrEnum):
    UNREADABLE = "unreadable"  # a line that is not an entry
    DUPLICATE = "duplicate"
    GAP = "gap"  # entries missing (or moved) inside a chain
    UNLINKED = "unlinked"
    EDITED = "edited"  # content does not match its seal
    UNKEYED = "unkeyed"  # intact, but sealed without a key: proves nothing against a rewrite
    DOWNGRADED = "downgraded"  # unkeyed entries after keyed ones: re-hashed without the key
    UNVERIFIABLE = "unverifiable"  # keyed, and no key to check with
    REMOVED_TAIL = "removed-tail"  # the file ends before the anchors say it does
    REMOVED_INCIDENT = "removed-incident"
    REWRITTEN = "rewritten"  # an entry differs from what an anchor recorded
    CHECKPOINT_FORGED = "checkpoint-forged"
    CHECKPOINT_MISSING = "checkpoint-missing"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    message: str
    incident_id: str | None = None
    seq: int | None = None

    def __str__(self) -> str:
        return self.message


def genesis(incident_id: str) -> str:
    return hashlib.sha256(f"bulkhead-audit:{incident_id}".encode()).hexdigest()


def canonical_entry(
    incident_id: str, *, seq: int, at: str, kind: str, detail: dict[str, Any], prev: str
) -> bytes:
    fields = {"incident_id": incident_id, "seq": seq, "at": at, "kind": kind, "detail": detail}
    return json.dumps(
        {**fields, "prev": prev}, sort_keys=True, separators=(",", ":"), default=str
    ).encode()


def is_keyed(seal_value: str | None) -> bool:
    return seal_value is not None and seal_value.startswith(KEYED_PREFIX)


def mac(key: bytes, domain: bytes, canonical: bytes) -> str:
    return KEYED_PREFIX + hmac.new(key, domain + canonical, hashlib.sha256).hexdigest()


def entry_seal(entry: AuditEntry, prev: str, key: bytes | None) -> str:
    """What `entry` linked after `prev` must carry: its MAC, or without a key its hash."""
    canonical = canonical_entry(
        entry.incident_id,
        seq=entry.seq,
        at=entry.at,
        kind=entry.kind,
        detail=entry.detail,
        prev=prev,
    )
    if key is None:
        return hashlib.sha256(canonical).hexdigest()
    return mac(key, ENTRY_DOMAIN, canonical)


def seal(entry: AuditEntry, prev: str, key: bytes | None = None) -> AuditEntry:
    """The entry linked after `prev`, carrying its own seal (keyed when `key` is given)."""
    return entry.model_copy(update={"prev": prev, "hash": entry_seal(entry, prev, key)})


def chain_findings(entries: Iterable[AuditEntry], key: bytes | None = None) -> list[Finding]:
    """Every break in each incident's chain, and each chain that is not keyed.

    Everything must follow in file order: a gap, a reorder, a broken link, an edited
    entry or a second copy of an entry is reported.
    """
    by_incident: dict[str, list[AuditEntry]] = {}
    for entry in entries:
        by_incident.setdefault(entry.incident_id, []).append(entry)
    findings: list[Finding] = []
    for incident_id, trail in by_incident.items():
        findings.extend(_incident_findings(incident_id, trail, key))
    return findings


def chain_errors(entries: Iterable[AuditEntry], key: bytes | None = None) -> list[str]:
    """The breaks alone, as text; an intact unkeyed chain has none (see chain_findings)."""
    return [str(f) for f in chain_findings(entries, key) if f.kind is not FindingKind.UNKEYED]


@dataclass
class _Walk:
    """Where one incident's chain stands while its entries are read in file order."""

    incident_id: str
    expected_prev: str
    expected_seq: int = 1
    keyed_seen: bool = False
    unkeyed: int = 0
    unchecked: int = 0


def _incident_findings(
    incident_id: str, trail: list[AuditEntry], key: bytes | None
) -> list[Finding]:
    walk = _Walk(incident_id, expected_prev=genesis(incident_id))
    seen: set[int] = set()
    findings: list[Finding] = []
    for entry in trail:
        if entry.seq in seen:
            findings.append(_at(entry, FindingKind.DUPLICATE, "appears twice (copied or replayed)"))
            continue
        seen.add(entry.seq)
        findings.extend(_link_findings(walk, entry))
        findings.extend(_seal_findings(walk, entry, key))
        walk.expected_prev, walk.expected_seq = entry.hash or "", entry.seq + 1
    findings.extend(_key_findings(incident_id, unkeyed=walk.unkeyed, unchecked=walk.unchecked))
    return findings


def _at(entry: AuditEntry, kind: FindingKind, text: str) -> Finding:
    return Finding(kind, f"{entry.incident_id} #{entry.seq}: {text}", entry.incident_id, entry.seq)


def _link_findings(walk: _Walk, entry: AuditEntry) -> list[Finding]:
    findings: list[Finding] = []
    if entry.seq != walk.expected_seq:
        text = f"expected entry #{walk.expected_seq} (missing or reordered)"
        if entry.seq > walk.expected_seq:
            text += f": {span(walk.expected_seq, entry.seq - 1)} not in the trail"
        findings.append(_at(entry, FindingKind.GAP, text))
    if entry.prev != walk.expected_prev:
        findings.append(_at(entry, FindingKind.UNLINKED, "does not link to the previous entry"))
    return findings


def _seal_findings(walk: _Walk, entry: AuditEntry, key: bytes | None) -> list[Finding]:
    if is_keyed(entry.hash):
        walk.keyed_seen = True
        if key is None:
            walk.unchecked += 1
        elif entry.hash != entry_seal(entry, entry.prev or "", key):
            text = "content does not match its MAC (edited, or sealed with another key)"
            return [_at(entry, FindingKind.EDITED, text)]
        return []
    if entry.hash is None or entry.hash != entry_seal(entry, entry.prev or "", None):
        return [_at(entry, FindingKind.EDITED, "content does not match its hash (edited)")]
    if walk.keyed_seen:
        text = "sealed without the key after keyed entries (re-hashed by someone without it?)"
        return [_at(entry, FindingKind.DOWNGRADED, text)]
    walk.unkeyed += 1
    return []


def _key_findings(incident_id: str, *, unkeyed: int, unchecked: int) -> list[Finding]:
    findings: list[Finding] = []
    if unkeyed:
        findings.append(
            Finding(
                FindingKind.UNKEYED,
                f"{incident_id}: {unkeyed} entries carry a plain SHA-256 hash, not a MAC: "
                "a rewrite that re-hashed them would not show",
                incident_id,
            )
        )
    if unchecked:
        findings.append(
            Finding(
                FindingKind.UNVERIFIABLE,
                f"{incident_id}: {unchecked} keyed entries not checked: no audit key",
                incident_id,
            )
        )
    return findings


def span(first: int, last: int) -> str:
    """`entry #5` or `entries #5-#7`: the entries a finding names."""
    return f"entry #{first}" if first == last else f"entries #{first}-#{last}"
