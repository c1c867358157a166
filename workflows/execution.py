"""Carrying out steps inside IncidentWorkflow: the change (changing.py), then the lease,
the guard's watch, rollback and the city ledger. Workflow code: deterministic, and every
side effect is a local activity called by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.adapter import Receipt, Verification
    from contracts.city import ContainmentEvent, city_workflow_id
    from contracts.incident import AuditEntry, GuardReport, RecordedPlan, StepState, StepView
    from contracts.names import Activity, CitySignal
    from workflows import versions
    from workflows.changing import (
        CONTAIN_PATCH,
        PLAN_IN_TASK_PATCH,
        PLANS_BY_STEP_PATCH,
        READS_PATCH,
        STEP_FAILURES,
        StepChanges,
        error_text,
        writes_of,
    )
    from workflows.unclaimed import UnclaimedPlans

# Histories recorded before the essential-service guard existed replay without its probes.
GUARD_PATCH = "essential-service-guard"
# Histories recorded before it probe a guarded step's services again in the task that
# contained it, the settle wait inside the probe, and only then report it (see _watch).
GUARD_WATCH_PATCH = "guard-watches-after"
# Histories recorded before it dry-run a waiting step in a regular activity (deciding.py).
PREVIEW_IN_TASK_PATCH = "preview-in-task"
# A dry run is worth one retry; approvers can decide without it.
PREVIEW_RETRY = RetryPolicy(maximum_attempts=2)


def _holds(step: StepView, applied_seq: int | None) -> bool:
    """Whether the step still holds the change made by its apply number `applied_seq`."""
    return step.state is StepState.VERIFIED and step.applied_seq == applied_seq


class StepExecution(StepChanges):
    def __init__(
        self,
        *,
        incident_id: str,
        audit_tail: list[AuditEntry],
        audit_total: int,
        exported_seq: int,
        escalate: Callable[[str], None],
        unclaimed: Sequence[RecordedPlan] = (),
        unclaimed_told: Sequence[str] = (),
    ) -> None:
        super().__init__(
            incident_id=incident_id,
            audit_tail=audit_tail,
            audit_total=audit_total,
            exported_seq=exported_seq,
        )
        self._escalate = escalate
        self._ledger_tasks: set[asyncio.Task[None]] = set()
        # Set by decide_versions at the run's start, from their patches.
        self.previews_in_task = False
        self.watches_after = False
        # Step id -> its guard's watch: the task, the step, and the apply it watches.
        self._watches: dict[str, tuple[asyncio.Task[None], StepView, int | None]] = {}
        self._settling: set[tuple[str, int | None]] = set()  # watches on their timer
        self.unclaimed = UnclaimedPlans(self, unclaimed, unclaimed_told, escalate)
        self._tripping: set[str] = set()  # steps the guard is about to undo (see _guard_after)

    def decide_versions(self) -> None:
        """Once, at the run's start (see versions.patched): how this run plans and dry-runs."""
        self.plans_in_task = versions.patched(PLAN_IN_TASK_PATCH)
        self.contains_at_once = versions.patched(CONTAIN_PATCH)
        self.previews_in_task = versions.patched(PREVIEW_IN_TASK_PATCH)
        self.watches_after = versions.patched(GUARD_WATCH_PATCH)
        self.records_reads = versions.patched(READS_PATCH)
        self.plans_by_step = versions.patched(PLANS_BY_STEP_PATCH)
        self.unclaimed.start()

    # --- steps ----------------------------------------------------------------------------

    async def execute_ready(self, steps: Iterable[StepView]) -> None:
        """Carry out every step that may run now (planned, or approved) together; then
        say what a lost attempt changed that this run did not (unclaimed.py)."""
        steps = list(steps)
        ready = [s for s in steps if s.state in (StepState.PLANNED, StepState.APPROVED)]
        if ready:
            await asyncio.gather(*(self.execute(s) for s in ready))
        self.unclaimed.report(steps)

    async def execute(self, step: StepView, *, reapply: bool = False) -> None:
        """Plan, apply and verify a step; `reapply` when a drift check found its target
        out of the contained state (workflows/drift.py): the step keeps its lease."""
        if reapply:  # this apply's guard watches from here; the last one's stops
            self._unwatch(step)
        try:
            guard_before, verification = await self.change(step, reapply=reapply)
            step.verification = verification.model_dump()
        except STEP_FAILURES as exc:
            step.error = error_text(exc)
            self.transition(step, StepState.FAILED, error=step.error)
            self._escalate(f"step {step.id}: {step.error}")
            return
        if verification.ok:
            await self._hold(step, verification, guard_before, reapply=reapply)
            return
        step.error = f"verification failed: {verification.detail}"
        self.transition(step, StepState.FAILED, error=step.error)
        self._escalate(f"step {step.id}: {step.error}")
        # A crash mid-rollback must replay this verification, not apply and verify again.
        await self.record_reads(step, "step.verify_failed")
        await self.roll_back(step, from_failure=True)

    async def _hold(
        self,
        step: StepView,
        verification: Verification,
        guard_before: GuardReport | None,
        *,
        reapply: bool,
    ) -> None:
        if step.reversible and step.lease_s and not reapply:
            expires = workflow.now() + timedelta(seconds=step.lease_s)
            step.lease_expires_at = expires.isoformat()
        step.drift_checked_at = workflow.now().isoformat()
        self.transition(
            step,
            StepState.VERIFIED,
            observed=verification.observed,
            lease_expires_at=step.lease_expires_at,
            **({"reapplied": True} if reapply else {}),
        )
        if step.automatic and not reapply:
            self._tell_city(CitySignal.CONTAINMENT_STARTED, step)
        # Contained first, watched after: the guard never delays containment, and it
        # undoes the step if an essential service it watches went down meanwhile.
        if guard_before is not None and self.watches_after:
            held = step.applied_seq
            watch = asyncio.ensure_future(self._watch(step, guard_before, held))
            self._watches[step.id] = (watch, step, held)
        elif guard_before is not None:
            await self._guard_after(step, guard_before)

    async def _watch(self, step: StepView, before: GuardReport, held: int | None) -> None:
        """The guard's second look, in runs with GUARD_WATCH_PATCH: after a durable timer
        of the guard's settle time, so the task that contained the step ends and reports
        it contained at once (before, the wait ran inside the probe, and the step was
        reported a second later). Skipped if the step stopped holding meanwhile."""
        try:
            if before.settle_s > 0:
                self._settling.add((step.id, held))
                await workflow.sleep(before.settle_s)
                self._settling.discard((step.id, held))
            if _holds(step, held):
                await self._guard_after(step, before, held=held)
        except Exception as exc:  # noqa: BLE001 - nothing awaits a watch: it must not fail unseen
            self._escalate(f"step {step.id}: the guard's second look failed: {exc!r}")

    def _unwatch(self, step: StepView) -> None:
        """Stop the watch of a step's earlier apply (on its timer, or probing: a re-apply
        only starts from a step that holds, so never while the watch undoes it)."""
        watch = self._watches.pop(step.id, None)
        if watch is not None:
            watch[0].cancel()

    def watching(self) -> bool:
        """Whether a guard watch must end before the run may: one probing or undoing its
        step, or waiting on a step that still holds (one waiting on a step that stopped
        holding would only wake to find that)."""
        return any(
            not task.done() and (_holds(step, held) or (step.id, held) not in self._settling)
            for task, step, held in self._watches.values()
        )

    async def observe(self, step: StepView) -> Verification:
        """Verify a held step's target again (a drift check); adapter errors propagate."""
        if step.receipt is None:
            raise ApplicationError(f"step {step.id} holds no receipt", non_retryable=True)
        return await self._call(Activity.VERIFY, step.receipt, Verification)

    def abandon(self, step: StepView, error: str) -> None:
        """The step no longer holds and Bulkhead leaves its target as found: a person
        decides. Nothing rolls it back later (it is not held), and the city is told."""
        step.error = error
        step.lease_expires_at = None
        self.transition(step, StepState.FAILED, error=error)
        self._escalate(f"step {step.id}: {error}")
        if step.automatic:
            self._tell_city(CitySignal.CONTAINMENT_ENDED, step)

    # --- essential-service guard -------------------------------------------------------------

    async def _guard_after(
        self, step: StepView, before: GuardReport, *, held: int | None = None
    ) -> None:
        """After a verified step: if an essential service it was watching went from healthy
        to unhealthy, undo the step and escalate. Containment must not cause the outage.
        `held`: a watch's (see _watch), which waited already and yields to whatever ended
        the hold while it probed (a release, an expiry, a re-apply)."""
        after = await self._probe_guard(step, "after", settled=held is not None)
        if held is not None and not _holds(step, held):
            return
        if after is None:
            self._escalate(f"step {step.id}: essential services could not be probed after it")
            return
        step.guard_report = {"before": before.model_dump(), "after": after.model_dump()}
        harmed = after.harmed_since(before)
        if not harmed:
            return
        undo = "rolled back" if step.reversible else "cannot be undone: act by hand"
        step.error = (
            f"guard: {', '.join(harmed)} healthy before the step and unhealthy after it; {undo}"
        )
        self.record(
            "guard.tripped",
            step=step.id,
            services=harmed,
            detail={name: after.services[name].detail for name in harmed},
        )
        self._escalate(f"step {step.id}: {step.error}")
        # Rolling back heals the harm: a crash mid-rollback must replay this look, not
        # probe again and find nothing wrong while the step stays "verified". Meanwhile a
        # drift check leaves the step to this rollback (tripping), never re-applies it.
        self._tripping.add(step.id)
        try:
            await self.record_reads(step, "guard.tripped")
        finally:
            self._tripping.discard(step.id)
        if held is None or _holds(step, held):  # not ended meanwhile (a release, an expiry)
            await self.roll_back(step)

    def tripping(self, step: StepView) -> bool:
        """Whether the guard found the step's change harmful and is about to undo it."""
        return step.id in self._tripping

    async def roll_back(self, step: StepView, *, from_failure: bool = False) -> None:
        if step.receipt is None or not step.reversible:
            return
        if not from_failure and step.state not in (StepState.APPLIED, StepState.VERIFIED):
            return  # undone meanwhile: the guard's watch got there while a release went on
        restore = step.receipt.model_copy(update={"before": step.rollback_intent or {}})
        was_holding = not from_failure
        self.transition(step, StepState.ROLLING_BACK)
        try:
            undone = await self._call(Activity.ROLLBACK, restore, Receipt)
            check = await self._call(Activity.VERIFY, undone, Verification)
        except STEP_FAILURES as exc:
            step.error = f"rollback failed: {error_text(exc)}"
            self.transition(step, StepState.FAILED, error=step.error)
            self._escalate(f"step {step.id}: {step.error}")
            return
        step.receipt = undone
        step.verification = check.model_dump()
        step.lease_expires_at = None
        if not check.ok:
            step.error = f"rollback not observed on the target: {check.detail}"
            self.transition(step, StepState.FAILED, error=step.error)
            self._escalate(f"step {step.id}: {step.error}")
            return
        self.transition(
            step,
            StepState.ROLLED_BACK,
            observed=check.observed,
            **writes_of(undone.writes[len(restore.writes) :]),
        )
        if step.automatic and was_holding:
            self._tell_city(CitySignal.CONTAINMENT_ENDED, step)

    def _tell_city(self, signal: str, step: StepView) -> None:
        """Update the city-wide ledger without holding up this incident."""
        event = ContainmentEvent(key=f"{self.incident_id}:{step.id}", at=workflow.now().isoformat())
        handle = workflow.get_external_workflow_handle(city_workflow_id(workflow.info().task_queue))

        async def send() -> None:
            try:
                await handle.signal(signal, event)
            except Exception as exc:  # noqa: BLE001 - the ledger must never fail an incident
                # Only the type: a message may be worded differently when history replays,
                # and the audit chain must come out identical on every replay.
                self.record(
                    "city.unreachable", signal=signal, step=step.id, error=type(exc).__name__
                )

        task = asyncio.ensure_future(send())
        self._ledger_tasks.add(task)
        task.add_done_callback(self._ledger_tasks.discard)
