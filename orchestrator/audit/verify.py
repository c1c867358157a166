"""Compare an audit trail with its anchors, and name what is missing or rewritten.

The chain alone (orchestrator/audit/chain.py) shows an edit, a gap or a reorder, and
with the key an entry re-hashed by someone without it. What it cannot show is a cut: a
trail whose last entries, or whole incidents, were deleted is still a set of intact
chains. Here the trail is compared with:

- the signed checkpoints (the file beside the audit file, and PostgreSQL's copy): each
  records every incident's head, so a chain that ends early, or an incident that is
  gone, is named with the checkpoint that saw it;
- PostgreSQL's copy of the entries: every entry it holds must be in the file, with the
  same seal.

This assumes the file and the anchors hold one trail: one host's, which its workers
share (orchestrator/audit/shared.py; docs/DEPLOYMENT.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from contracts.incident import AuditEntry
from orchestrator.audit.chain import Finding, FindingKind, chain_findings, is_keyed, span
from orchestrator.audit.checkpoint import (
    CHECKPOINT_GENESIS,
    Checkpoint,
    Head,
    checkpoint_is_genuine,
)


@dataclass
class Trail:
    """One copy of the trail as read: its entries, and what could not be read."""

    source: str
    entries: list[AuditEntry]
    unreadable: list[str] = field(default_factory=list)

    @property
    def incidents(self) -> int:
        return len({e.incident_id for e in self.entries})

    @property
    def keyed(self) -> bool:
        return bool(self.entries) and all(is_keyed(e.hash) for e in self.entries)


@dataclass
class CheckpointStore:
    """Checkpoints as one store holds them: the checkpoint file, or PostgreSQL."""

    source: str
    checkpoints: list[Checkpoint | str]
    # The checkpoint file is written in order, so a gap in its numbering is a deletion;
    # PostgreSQL is compared checkpoint by checkpoint instead.
    ordered: bool = True

    @property
    def readable(self) -> list[Checkpoint]:
        return [c for c in self.checkpoints if isinstance(c, Checkpoint)]


@dataclass
class Verdict:
    trail: Trail
    findings: list[Finding]
    notes: list[str]
    latest: Checkpoint | None
    anchors: list[str]

    def ok(self, *, allow_unkeyed: bool = False) -> bool:
        tolerated = {FindingKind.UNKEYED} if allow_unkeyed else set()
        return all(f.kind in tolerated for f in self.findings)


def verify_trail(
    trail: Trail,
    *,
    key: bytes | None,
    stores: Sequence[CheckpointStore] = (),
    anchor: Trail | None = None,
) -> Verdict:
    """Everything wrong with `trail`, judged by its chains, the checkpoint stores and an
    anchor copy of its entries (PostgreSQL)."""
    findings = [Finding(FindingKind.UNREADABLE, line) for line in trail.unreadable]
    findings += chain_findings(trail.entries, key)
    genuine, checkpoint_problems = _genuine_checkpoints(stores, key)
    findings += checkpoint_problems + _absent_checkpoints(trail, stores)
    findings += head_findings(trail.entries, genuine)
    notes: list[str] = []
    if anchor is not None:
        findings += [_prefixed(anchor.source, f) for f in _anchor_breaks(anchor, key)]
        anchor_findings, anchor_notes = compare_with_anchor(trail.entries, anchor)
        findings += anchor_findings
        notes += anchor_notes
    # By time, not number: a worker that lost its checkpoint file numbers from 1 again.
    latest = max(genuine, key=lambda c: (c.at, c.number)) if genuine else None
    notes += _coverage_notes(trail.entries, latest, anchored=anchor is not None)
    anchors = [s.source for s in stores] + ([anchor.source] if anchor is not None else [])
    return Verdict(trail, findings, notes, latest, anchors)


def _prefixed(source: str, finding: Finding) -> Finding:
    return Finding(finding.kind, f"{source}: {finding.message}", finding.incident_id, finding.seq)


def _anchor_breaks(anchor: Trail, key: bytes | None) -> list[Finding]:
    """Breaks in the anchor's own chains (its unkeyed-ness is the file's, already told)."""
    quiet = {FindingKind.UNKEYED, FindingKind.UNVERIFIABLE}
    return [f for f in chain_findings(anchor.entries, key) if f.kind not in quiet]


def _genuine_checkpoints(
    stores: Sequence[CheckpointStore], key: bytes | None
) -> tuple[list[Checkpoint], list[Finding]]:
    """The checkpoints whose MAC holds (one copy of each), and what is wrong with the rest."""
    findings: list[Finding] = []
    genuine: dict[str, Checkpoint] = {}
    for store in stores:
        findings += [
            Finding(FindingKind.UNREADABLE, line)
            for line in store.checkpoints
            if isinstance(line, str)
        ]
        if key is None:
            if store.readable:
                text = (
                    f"{store.source}: {len(store.readable)} checkpoints not checked: no audit key"
                )
                findings.append(Finding(FindingKind.UNVERIFIABLE, text))
            continue
        for checkpoint in store.readable:
            if checkpoint_is_genuine(checkpoint, key):
                genuine.setdefault(checkpoint.mac, checkpoint)
            else:
                text = f"{store.source}: checkpoint #{checkpoint.number} does not match its MAC"
                findings.append(Finding(FindingKind.CHECKPOINT_FORGED, text))
        if store.ordered:
            findings += _sequence_findings(store, key)
    findings += _unmatched_checkpoints(stores, key)
    return sorted(genuine.values(), key=lambda c: c.number), findings


def _absent_checkpoints(trail: Trail, stores: Sequence[CheckpointStore]) -> list[Finding]:
    """A keyed trail has a checkpoint from its first write on: none at all was deleted."""
    if not any(is_keyed(e.hash) for e in trail.entries):
        return []
    return [
        Finding(
            FindingKind.CHECKPOINT_MISSING,
            f"{store.source}: no checkpoint, yet the trail is keyed (one is written with its"
            " first entry): deleted? The trail's ends cannot be checked against it",
        )
        for store in stores
        if store.ordered and not store.checkpoints
    ]


def _sequence_findings(store: CheckpointStore, key: bytes) -> list[Finding]:
    """Checkpoints deleted from the middle (or start) of the checkpoint file."""
    findings: list[Finding] = []
    expected_number, expected_prev = 1, CHECKPOINT_GENESIS
    for checkpoint in store.readable:
        if not checkpoint_is_genuine(checkpoint, key):
            continue
        if checkpoint.number < expected_number:
            text = f"{store.source}: checkpoint #{checkpoint.number} out of order (repeated?)"
            findings.append(Finding(FindingKind.CHECKPOINT_MISSING, text))
        elif checkpoint.number > expected_number or checkpoint.prev != expected_prev:
            first, last = expected_number, max(expected_number, checkpoint.number - 1)
            which = f"#{first}" if first == last else f"#{first}-#{last}"
            text = f"{store.source}: checkpoint {which} missing before #{checkpoint.number}"
            findings.append(Finding(FindingKind.CHECKPOINT_MISSING, text))
        expected_number, expected_prev = checkpoint.number + 1, checkpoint.mac
    return findings


def _unmatched_checkpoints(stores: Sequence[CheckpointStore], key: bytes | None) -> list[Finding]:
    """A genuine checkpoint an anchor holds and the checkpoint file lacks was deleted."""
    local = [s for s in stores if s.ordered]
    if key is None or not local:
        return []
    in_file = {c.mac for s in local for c in s.readable}
    findings: list[Finding] = []
    for store in stores:
        if store.ordered:
            continue
        for checkpoint in store.readable:
            if checkpoint.mac not in in_file and checkpoint_is_genuine(checkpoint, key):
                text = (
                    f"checkpoint #{checkpoint.number} ({checkpoint.at}) is in {store.source}"
                    f" but not in {local[0].source}"
                )
                findings.append(Finding(FindingKind.CHECKPOINT_MISSING, text))
    return findings


def head_findings(
    entries: Iterable[AuditEntry], checkpoints: Sequence[Checkpoint]
) -> list[Finding]:
    """Each incident's chain against every head the checkpoints recorded for it."""
    by_incident = _by_incident(entries)
    claims: dict[tuple[str, int, str, int], int] = {}
    for checkpoint in checkpoints:  # oldest first: each claim names the first that made it
        for head in checkpoint.heads:
            claims.setdefault(
                (head.incident_id, head.seq, head.hash, head.count), checkpoint.number
            )
    findings: list[Finding] = []
    furthest: dict[str, tuple[Head, int]] = {}
    for (incident_id, seq, seal_value, count), number in claims.items():
        head = Head(incident_id=incident_id, seq=seq, hash=seal_value, count=count)
        if incident_id not in furthest or seq > furthest[incident_id][0].seq:
            furthest[incident_id] = (head, number)
        findings += _claim_findings(by_incident.get(incident_id, {}), head, number)
    for incident_id, (head, number) in sorted(furthest.items()):
        findings += _end_findings(incident_id, by_incident.get(incident_id, {}), head, number)
    return findings


def _by_incident(entries: Iterable[AuditEntry]) -> dict[str, dict[int, AuditEntry]]:
    found: dict[str, dict[int, AuditEntry]] = {}
    for entry in entries:
        found.setdefault(entry.incident_id, {}).setdefault(entry.seq, entry)
    return found


def _claim_findings(chain: dict[int, AuditEntry], head: Head, number: int) -> list[Finding]:
    """The entry a checkpoint recorded as a head must still be there with the same seal."""
    entry = chain.get(head.seq)
    if entry is None:
        return []  # missing entries are told once per incident, by _end_findings
    where = f"{head.incident_id} #{head.seq}"
    if entry.hash != head.hash:
        text = f"{where}: differs from the head checkpoint #{number} recorded (rewritten)"
        return [Finding(FindingKind.REWRITTEN, text, head.incident_id, head.seq)]
    present = sum(1 for seq in chain if seq <= head.seq)
    if present < head.count:
        text = (
            f"{head.incident_id}: checkpoint #{number} counted {head.count} entries up to"
            f" #{head.seq}, the trail has {present}"
        )
        return [Finding(FindingKind.GAP, text, head.incident_id)]
    return []


def _end_findings(
    incident_id: str, chain: dict[int, AuditEntry], head: Head, number: int
) -> list[Finding]:
    """An incident gone, or its chain ending before the furthest head recorded for it."""
    recorded = f"checkpoint #{number} recorded {head.count} entries up to #{head.seq}"
    if not chain:
        text = f"{incident_id}: no entry left in the trail; {recorded}"
        return [Finding(FindingKind.REMOVED_INCIDENT, text, incident_id)]
    last = max(chain)
    if last >= head.seq:
        return []
    text = (
        f"{incident_id}: {span(last + 1, head.seq)} missing at the end of its chain"
        f" (the trail ends at #{last}); {recorded}"
    )
    return [Finding(FindingKind.REMOVED_TAIL, text, incident_id, last + 1)]


def compare_with_anchor(
    entries: Sequence[AuditEntry], anchor: Trail
) -> tuple[list[Finding], list[str]]:
    """Every entry the anchor holds must be in the trail, sealed the same."""
    mine = _by_incident(entries)
    findings: list[Finding] = []
    missing: dict[str, list[int]] = {}
    for entry in anchor.entries:
        kept = mine.get(entry.incident_id, {}).get(entry.seq)
        if kept is None:
            missing.setdefault(entry.incident_id, []).append(entry.seq)
        elif kept.hash != entry.hash:
            text = f"{entry.incident_id} #{entry.seq}: differs from the {anchor.source} copy"
            findings.append(Finding(FindingKind.REWRITTEN, text, entry.incident_id, entry.seq))
    for incident_id, seqs in sorted(missing.items()):
        findings.append(
            _missing_finding(incident_id, sorted(seqs), mine.get(incident_id, {}), anchor)
        )
    anchored = {(e.incident_id, e.seq) for e in anchor.entries}
    unanchored = sum(1 for e in entries if (e.incident_id, e.seq) not in anchored)
    notes = [f"{unanchored} entries are not (yet) in {anchor.source}"] if unanchored else []
    return findings, notes


def _missing_finding(
    incident_id: str, seqs: list[int], chain: dict[int, AuditEntry], anchor: Trail
) -> Finding:
    held = f"{anchor.source} holds {_spans(seqs)}"
    if not chain:
        text = f"{incident_id}: no entry left in the trail; {held}"
        return Finding(FindingKind.REMOVED_INCIDENT, text, incident_id)
    if seqs[0] > max(chain):
        text = f"{incident_id}: {_spans(seqs)} missing at the end of its chain; {held}"
        return Finding(FindingKind.REMOVED_TAIL, text, incident_id, seqs[0])
    text = f"{incident_id}: {_spans(seqs)} missing from the trail; {held}"
    return Finding(FindingKind.GAP, text, incident_id, seqs[0])


def _spans(seqs: list[int]) -> str:
    """`entries #2-#4, entry #7` for [2, 3, 4, 7]."""
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return ", ".join(span(first, last) for first, last in runs)


def _coverage_notes(
    entries: Sequence[AuditEntry], latest: Checkpoint | None, *, anchored: bool
) -> list[str]:
    """What a cut could still take unseen: entries newer than the latest checkpoint."""
    if latest is None:
        return []
    heads = {h.incident_id: h.seq for h in latest.heads}
    newer = sum(1 for e in entries if e.seq > heads.get(e.incident_id, 0))
    if not newer:
        return []
    after = f"{newer} entries are newer than the latest checkpoint (#{latest.number}, {latest.at})"
    if anchored:
        return [after]
    return [after + ": a cut among them shows only against an anchor (--postgres)"]
