"""What the incident list shows of an IncidentWorkflow: its search attributes and memo.

The workflow computes its Visible (contracts/visibility.py) from its own fields; this
keeps the published copy and upserts only when it changed, so a quiet incident adds no
events to its history. In runs with the audit BATCH_PATCH a new findings count alone
waits for the next publish that has to happen anyway, or for the next audit export
(at most EXPORT_DELAY after the finding): a storm then costs the list one visibility
write per batch, not one per finding. Workflow code: deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.findings import Finding
    from contracts.visibility import FindingsShown, Visible, findings_shown
    from workflows.visibility import updates

VISIBILITY_PATCH = "visibility"  # older histories never upserted search attributes


class Listing:
    def __init__(self) -> None:
        self.enabled = False  # set by the workflow's run, from VISIBILITY_PATCH
        self.counts_wait = False  # set by the workflow's run, from the audit BATCH_PATCH
        self._published: Visible | None = None
        self.shown = ShownMemo()  # what the list shows of the kept findings

    def stale(self, current: Callable[[], Visible]) -> bool:
        """Whether the list shows something else than `current()` that must be published
        now (the workflow asks on every activation)."""
        return self.enabled and self._differs(current(), counts=not self.counts_wait)

    def publish(self, current: Callable[[], Visible], *, counts: bool = False) -> None:
        """Keep the list's search attributes and memo current (only what changed);
        `counts` publishes a findings count that waited."""
        if not self.enabled:
            return
        shown = current()
        if not self._differs(shown, counts=counts or not self.counts_wait):
            return
        workflow.upsert_search_attributes(updates(shown))
        workflow.upsert_memo(shown.memo())
        self._published = shown

    def _differs(self, shown: Visible, *, counts: bool) -> bool:
        published = self._published
        if published is None or counts:
            return shown != published
        return dataclasses.replace(shown, findings=published.findings) != published


class ShownMemo:
    """findings_shown, computed again only when the findings changed.

    The workflow asks for its Visible on every check of its wait condition, and walking
    every resource of up to 200 kept findings each time was about 7 % of a worker's CPU in
    a storm (issue #18). The memo keeps the findings it saw (references, so an id is never
    reused under it); a tuple compares equal item by item, identity first, so an unchanged
    list costs one pass in C, and an item replaced by an equal one keeps the value."""

    def __init__(self) -> None:
        self._of: tuple[Finding, ...] = ()
        self._shown: FindingsShown | None = None

    def __call__(self, findings: Sequence[Finding]) -> FindingsShown:
        current = tuple(findings)
        if self._shown is None or current != self._of:
            self._of, self._shown = current, findings_shown(current)
        return self._shown
