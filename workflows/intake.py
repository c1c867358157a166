"""Findings coming into IncidentWorkflow: counted, deduplicated, kept, and weighed
against the picture (only news calls for a decision).

The workflow's `finding` signal hands each envelope here. While the incident is being
released, a new finding waits in `after_release`: it opens the entity's next incident
(workflows/resting.py). Workflow code: deterministic, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.compact import compact, short_key
    from contracts.findings import ActivityId, Finding, FindingEnvelope
    from contracts.incident import IncidentCarry
    from workflows.kept import KeptFindings
    from workflows.picture import MAX_PICTURE, changes_picture, new_keys, stored_key

MAX_SEEN = 10_000  # dedupe memory per incident; the oldest keys are forgotten first
# Older runs kept findings whole (raw payload included) and remembered keys verbatim.
BOUNDED_PATCH = "bounded-findings"


def dedupe_key(finding: Finding) -> str:
    """A create is known by its uid; an update or close of it by uid, kind and time, so the
    same update posted twice is a duplicate but each new update is news."""
    uid = finding.finding_info.uid
    if finding.activity_id in (ActivityId.UPDATE, ActivityId.CLOSE):
        return f"finding:{uid}:{int(finding.activity_id)}:{finding.time}"
    return f"finding:{uid}"


def forget_oldest(keys: dict[str, None], limit: int) -> None:
    while len(keys) > limit:
        del keys[next(iter(keys))]


def claim(finding: Finding) -> dict[str, object]:
    """Where the finding's raw payload is kept and what was cut from it, for the audit."""
    kept: dict[str, object] = {}
    if finding.raw_ref is not None:
        kept["raw_sha256"] = finding.raw_ref.sha256
        kept["raw_bytes"] = finding.raw_ref.bytes
    if finding.truncated:
        kept["truncated"] = finding.truncated
    return kept


def received_kind(finding: Finding, *, updated: bool) -> str:
    if not updated:
        return "finding.received"
    return "finding.closed" if finding.activity_id is ActivityId.CLOSE else "finding.updated"


class Intake:
    """The findings side of an incident's state: what is kept, what was seen (for
    dedupe), the counts, the picture, and the findings that wait for the next incident."""

    def __init__(self, carry: IncidentCarry | None, record: Callable[..., None]) -> None:
        self.kept = KeptFindings(list(carry.findings) if carry else [])
        self.after_release = KeptFindings([])
        self.seen: dict[str, None] = dict.fromkeys(carry.seen) if carry else {}
        self.duplicates = carry.duplicates if carry else 0
        self.received = carry.findings_received if carry else 0
        self.picture: dict[str, None] = dict.fromkeys(carry.picture) if carry else {}
        self._record = record

    def bound(self) -> None:
        """Keep findings within the byte budget (the run's BOUNDED_PATCH said so)."""
        self.kept.bound()
        self.after_release.bound()

    def take(
        self, envelope: FindingEnvelope, *, bounded: bool, closing: bool, needs_decision: bool
    ) -> bool:
        """Count, dedupe, keep and audit one finding; return whether the incident now
        needs a decision (it did already, or this finding changes the picture)."""
        finding = compact(envelope.finding) if bounded else envelope.finding
        keys = [dedupe_key(finding)]
        if envelope.webhook_id:
            keys.append(f"webhook:{envelope.source}:{envelope.webhook_id}")
        if any(key in self.seen or short_key(key) in self.seen for key in keys):
            self.duplicates += 1
            self._record("finding.duplicate", uid=finding.finding_info.uid)
            return needs_decision
        self.received += 1
        for key in keys:
            self.seen[short_key(key) if bounded else key] = None
        forget_oldest(self.seen, MAX_SEEN)
        if closing:
            # This incident is being closed: the finding opens the next one (see run).
            self.after_release.add(finding, news=True)
            self._record(
                "finding.after_release", uid=finding.finding_info.uid, source=envelope.source
            )
            return needs_decision
        news = changes_picture(self.picture, finding)
        updated = self.kept.replace(finding)
        if not updated:
            self.kept.add(finding, news=news)
        needs_decision = needs_decision or news
        self.remember(finding, bounded=bounded)
        self._record(
            received_kind(finding, updated=updated),
            uid=finding.finding_info.uid,
            source=envelope.source,
            severity_id=int(finding.severity_id),
            changes_picture=needs_decision,
            **claim(finding),
        )
        return needs_decision

    def remember(self, finding: Finding, *, bounded: bool) -> None:
        for key in new_keys(self.picture, finding):
            self.picture[stored_key(key) if bounded else key] = None
        if bounded:
            forget_oldest(self.picture, MAX_PICTURE)

    def restart_picture(self, *, bounded: bool) -> None:
        """The next incident's picture: only what the findings after the release show."""
        self.picture = {}
        for finding in self.after_release.items:
            self.remember(finding, bounded=bounded)

    def closed_by_source(self) -> bool:
        """Every finding kept was closed by the SIEM that raised it."""
        kept = self.kept.items
        return bool(kept) and all(f.activity_id is ActivityId.CLOSE for f in kept)
