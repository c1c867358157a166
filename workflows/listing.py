"""What the incident list shows of an IncidentWorkflow: its search attributes and memo.

The workflow computes its Visible (contracts/visibility.py) from its own fields; this
keeps the published copy and upserts only when it changed, so a quiet incident adds no
events to its history. Workflow code: deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.visibility import Visible
    from workflows.visibility import updates

VISIBILITY_PATCH = "visibility"  # older histories never upserted search attributes


class Listing:
    def __init__(self) -> None:
        self.enabled = False  # set by the workflow's run, from VISIBILITY_PATCH
        self._published: Visible | None = None

    def stale(self, current: Callable[[], Visible]) -> bool:
        """Whether the list shows something else than `current()` (called only when
        enabled: the workflow asks on every activation)."""
        return self.enabled and current() != self._published

    def publish(self, current: Callable[[], Visible]) -> None:
        """Keep the list's search attributes and memo current (only what changed)."""
        if not self.enabled:
            return
        shown = current()
        if shown == self._published:
            return
        workflow.upsert_search_attributes(updates(shown))
        workflow.upsert_memo(shown.memo())
        self._published = shown
