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
from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.visibility import Visible
    from workflows.visibility import updates

VISIBILITY_PATCH = "visibility"  # older histories never upserted search attributes


class Listing:
    def __init__(self) -> None:
        self.enabled = False  # set by the workflow's run, from VISIBILITY_PATCH
        self.counts_wait = False  # set by the workflow's run, from the audit BATCH_PATCH
        self._published: Visible | None = None

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
