"""The audit trail of an IncidentWorkflow: entries recorded in state, exported in batches.

Every state change is an `AuditEntry` in the workflow's tail, then exported to the sink
by a regular activity (orchestrator/audit/sink.py). Exporting after every workflow task
cost a storm an activity dispatch per finding, which is most of what the dev server did
for it. Runs with BATCH_PATCH export containment promptly and findings in batches:
- an entry about a step, a decision, a release or an escalation goes out at once;
- entries that only say a finding arrived wait up to EXPORT_DELAY, or until EXPORT_BATCH
  of them wait, and then go out together.
Nothing is ever dropped: pending entries stay in the tail (never trimmed) and travel in
the continue-as-new carry; the run flushes before it ends. Workflow code: deterministic.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts.incident import AuditBatch, AuditEntry
    from contracts.names import Activity

AUDIT_EXPORT_TIMEOUT = timedelta(seconds=30)
AUDIT_EXPORT_DEADLINE = timedelta(minutes=5)
# Audit entries kept in state for queries; the sink holds the whole trail.
AUDIT_TAIL = 500
# Histories from before batching exported after every workflow task.
BATCH_PATCH = "audit-batches"
# How long a finding's entry may wait for company, and how many may wait. Long enough
# that an incident hearing a finding every second or two still exports once in a while:
# at 1 s the timer, the export and the task after it cost more than they saved.
EXPORT_DELAY = timedelta(seconds=5)
EXPORT_BATCH = 100
# Entries that only say a finding arrived; every other kind is exported at once.
DEFERRABLE = frozenset(
    {
        "finding.received",
        "finding.updated",
        "finding.closed",
        "finding.duplicate",
        "finding.after_release",
    }
)


class AuditTrail:
    def __init__(
        self,
        *,
        incident_id: str,
        audit_tail: list[AuditEntry],
        audit_total: int,
        exported_seq: int,
    ) -> None:
        self.incident_id = incident_id
        self.audit_tail = audit_tail
        self.audit_total = audit_total
        self.exported_seq = exported_seq
        self._export: asyncio.Task[None] | None = None
        # Set by the workflow's run, from BATCH_PATCH.
        self.batched = False
        # A carried-over backlog goes out at once, as before batching.
        self._urgent = self.has_pending_audit()
        self._export_by: datetime | None = None
        # Entries wait with no timer set for them (the first since an export, or an
        # export ended while they waited): the loop must wake and set one.
        self.rearm = False

    def record(self, kind: str, **detail: object) -> None:
        self.audit_total += 1
        # Round-trip the detail through JSON: the sink hashes exactly what is exported.
        entry = AuditEntry(
            incident_id=self.incident_id,
            seq=self.audit_total,
            at=workflow.now().isoformat(),
            kind=kind,
            detail=json.loads(json.dumps(detail, default=str)),
        )
        self.audit_tail.append(entry)
        if kind not in DEFERRABLE:
            self._urgent = True
        elif self._export_by is None:
            self._export_by = workflow.now() + EXPORT_DELAY
            # The loop may be asleep without a timer: wake it to set one (batched runs
            # only; older ones exported after every task and never slept on entries).
            self.rearm = self.batched
        # Trim the in-state tail, but never drop an entry the sink has not received yet.
        while len(self.audit_tail) > AUDIT_TAIL and self.audit_tail[0].seq <= self.exported_seq:
            self.audit_tail.pop(0)

    def export_due(self) -> bool:
        """Whether to export now: entries wait, no export is in flight, and (batched runs)
        one of them may not wait or the batch is full or old enough.

        With one export in flight at a time, a storm batches itself further: entries
        recorded while an export runs all go out together in the next one.
        """
        if self._export is not None or not self.has_pending_audit():
            return False
        if not self.batched or self._urgent:
            return True
        waiting = self.audit_total - self.exported_seq
        return waiting >= EXPORT_BATCH or (
            self._export_by is not None and workflow.now() >= self._export_by
        )

    def export_deadline(self) -> datetime | None:
        """When waiting finding entries must go out: the loop sleeps no longer, and
        asks again (`rearm`) when an export in flight ends."""
        self.rearm = False
        if not self.batched or self._export is not None or not self.has_pending_audit():
            return None
        return self._export_by

    def start_export(self) -> None:
        """Ship pending entries in the background, as a regular activity.

        Not a local activity: those also run in workflow-task attempts that are later
        discarded, and would export entries that never became part of the history.
        """
        pending = self._pending_audit()
        self._urgent = False
        self._export_by = None
        self._export = asyncio.ensure_future(self._export_batch(pending))

    async def flush_audit(self) -> None:
        """Before the run ends: every entry recorded so far reaches the sink."""
        until = self.audit_total
        while self.exported_seq < until:
            if self._export is None:
                self.start_export()
            if self._export is not None:
                await self._export

    def has_pending_audit(self) -> bool:
        return bool(self.audit_tail) and self.audit_tail[-1].seq > self.exported_seq

    def _pending_audit(self) -> list[AuditEntry]:
        return [e for e in self.audit_tail if e.seq > self.exported_seq]

    async def _export_batch(self, pending: list[AuditEntry]) -> None:
        try:
            await workflow.execute_activity(
                Activity.EXPORT_AUDIT,
                AuditBatch(entries=pending),
                start_to_close_timeout=AUDIT_EXPORT_TIMEOUT,
                schedule_to_close_timeout=AUDIT_EXPORT_DEADLINE,
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
            self.exported_seq = max(self.exported_seq, pending[-1].seq)
        except ActivityError:
            # The entries stay pending (never trimmed) and go out with the next export;
            # containment never waits for an audit sink that is down.
            self._urgent = True
        finally:
            self._export = None
            self.rearm = self.batched and self.has_pending_audit()
