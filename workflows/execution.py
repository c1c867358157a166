"""Carrying out steps inside IncidentWorkflow: plan → intent → apply → verify → lease,
rollback, the city ledger, and the audit trail. Workflow code: deterministic, and every
side effect is a local activity called by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from contracts.adapter import Plan, Receipt, StepCommand, Verification, WriteRecord
    from contracts.city import ContainmentEvent, city_workflow_id
    from contracts.incident import (
        AuditEntry,
        GuardReport,
        GuardRequest,
        PlanRecording,
        RecordedPlan,
        StepState,
        StepView,
    )
    from contracts.names import Activity, CitySignal, ErrorType
    from workflows import versions
    from workflows.auditing import AuditTrail

# Plan, apply, verify, rollback and the approvers' dry run run as local activities: a
# regular activity costs a round trip through the server and another workflow task. Runs
# from before PLAN_IN_TASK_PATCH and PREVIEW_IN_TASK_PATCH still plan and dry-run in
# regular ones (see _plan here and deciding.preview).
STEP_CALL_TIMEOUT = timedelta(seconds=10)
STEP_CALL_DEADLINE = timedelta(minutes=2)
ADAPTER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=6,
    non_retryable_error_types=[ErrorType.PERMANENT_ADAPTER],
)
# Probes have their own short timeouts; this bounds a whole round (several services).
GUARD_TIMEOUT = timedelta(seconds=15)
# Histories recorded before the essential-service guard existed replay without its probes.
GUARD_PATCH = "essential-service-guard"
# Histories recorded before it plan each step in a regular activity (see _plan).
PLAN_IN_TASK_PATCH = "plan-in-task"
# Histories recorded before it probe a guarded step's services again in the task that
# contained it, the settle wait inside the probe, and only then report it (see _watch).
GUARD_WATCH_PATCH = "guard-watches-after"
# Histories recorded before it dry-run a waiting step in a regular activity (deciding.py).
PREVIEW_IN_TASK_PATCH = "preview-in-task"
# A dry run is worth one retry; approvers can decide without it.
PREVIEW_RETRY = RetryPolicy(maximum_attempts=2)
ResultT = TypeVar("ResultT")
# How a failed activity surfaces in the workflow: a regular one as ActivityError, a local
# one that failed for good as the ApplicationError itself, a timed-out one as a timeout.
STEP_FAILURES = (ActivityError, ApplicationError, TemporalTimeoutError)


def _holds(step: StepView, applied_seq: int | None) -> bool:
    """Whether the step still holds the change made by its apply number `applied_seq`."""
    return step.state is StepState.VERIFIED and step.applied_seq == applied_seq


def error_text(exc: BaseException) -> str:
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc
    if isinstance(cause, ApplicationError) and cause.type:
        return f"{cause.type}: {cause.message}"
    return str(cause)


class StepExecution(AuditTrail):
    def __init__(
        self,
        *,
        incident_id: str,
        audit_tail: list[AuditEntry],
        audit_total: int,
        exported_seq: int,
        escalate: Callable[[str], None],
    ) -> None:
        super().__init__(
            incident_id=incident_id,
            audit_tail=audit_tail,
            audit_total=audit_total,
            exported_seq=exported_seq,
        )
        self._escalate = escalate
        self._applied = 0
        self._ledger_tasks: set[asyncio.Task[None]] = set()
        # Whether this run probes essential services (set by the workflow's run, from its
        # patch: histories from before the guard replay without probes).
        self.guarded = False
        # Set by decide_versions at the run's start, from their patches.
        self.plans_in_task = False
        self.previews_in_task = False
        self.watches_after = False
        # Step id -> its guard's watch: the task, the step, and the apply it watches.
        self._watches: dict[str, tuple[asyncio.Task[None], StepView, int | None]] = {}
        self._settling: set[tuple[str, int | None]] = set()  # watches on their timer
        self.recorded_plans: dict[str, Plan] = {}  # token -> plan (see _plan)
        self._plans = 0

    def decide_versions(self) -> None:
        """Once, at the run's start (see versions.patched): how this run plans and dry-runs."""
        self.plans_in_task = versions.patched(PLAN_IN_TASK_PATCH)
        self.previews_in_task = versions.patched(PREVIEW_IN_TASK_PATCH)
        self.watches_after = versions.patched(GUARD_WATCH_PATCH)

    # --- steps ----------------------------------------------------------------------------

    async def execute(self, step: StepView, *, reapply: bool = False) -> None:
        """Plan, apply and verify a step; `reapply` when a drift check found its target
        out of the contained state (workflows/drift.py): the step keeps its lease."""
        if reapply:  # this apply's guard watches from here; the last one's stops
            self._unwatch(step)
        command = self.command_of(step)
        guard_before = await self._probe_guard(step, "before")
        try:
            plan = await self._plan(step, command)
            self._record_intent(step, plan, reapply=reapply)
            self.transition(step, StepState.APPLYING)
            receipt = await self._call(Activity.APPLY, command, Receipt)
            step.receipt = receipt
            self._applied += 1
            step.applied_seq = self._applied
            self.transition(
                step, StepState.APPLIED, detail=receipt.detail, **_writes(receipt.writes)
            )
            verification = await self._call(Activity.VERIFY, receipt, Verification)
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
        await self.roll_back(step, from_failure=True)

    async def _plan(self, step: StepView, command: StepCommand) -> Plan:
        """The step's plan, durable in history before apply can change the target: a crash
        between apply and the end of the workflow task would otherwise run the task again,
        plan against the changed target, and record the wrong state to restore.

        Runs from before PLAN_IN_TASK_PATCH plan in a regular activity, whose result is in
        history before the workflow goes on, at the cost of a round trip through the
        server and a second workflow task. Runs with it plan in a local activity that
        also signals the plan to this run (PLAN_RECORDED): containment then takes one
        workflow task, and a task run again after a crash finds the plan in the signal it
        replays (recorded_plans) instead of planning again (bench/time_to_contain.py)."""
        if not self.plans_in_task:
            planned: Plan = await workflow.execute_activity(
                Activity.PLAN,
                command,
                result_type=Plan,
                start_to_close_timeout=STEP_CALL_TIMEOUT,
                retry_policy=ADAPTER_RETRY,
            )
            return planned
        self._plans += 1
        token = f"{step.id}#{self._plans}"
        recorded = self.recorded_plans.get(token)
        if recorded is not None:
            return recorded
        plan = await self._call(
            Activity.PLAN_RECORDED, PlanRecording(command=command, token=token), Plan
        )
        # The signal of this plan arrives in a later task, and is then already known.
        return self.recorded_plans.setdefault(token, plan)

    def record_plan(self, recorded: RecordedPlan) -> None:
        """The PLAN_RECORDED signal: the first plan under a token stands."""
        self.recorded_plans.setdefault(recorded.token, recorded.plan)

    def _record_intent(self, step: StepView, plan: Plan, *, reapply: bool) -> None:
        """The rollback intent is durable before apply runs: an apply can land even when
        its activity times out, and a retried apply only sees the changed target.

        A re-apply after drift keeps the first intent: the target now holds what a reboot
        or a hand put there, not what it held before the incident, and a release must
        restore the latter. What the re-plan found is recorded beside it.
        """
        if reapply and step.rollback_intent is not None:
            self.record(
                "step.intent",
                step=step.id,
                before=step.rollback_intent,
                after=plan.after,
                found=plan.before,
                reapply=True,
            )
            return
        step.rollback_intent = plan.before
        self.record("step.intent", step=step.id, before=plan.before, after=plan.after)

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

    def command_of(self, step: StepView) -> StepCommand:
        return StepCommand(
            incident_id=self.incident_id,
            step_id=step.id,
            adapter=step.adapter,
            action=step.action,
            target=step.target,
            args=step.args,
        )

    # --- essential-service guard -------------------------------------------------------------

    async def _probe_guard(
        self, step: StepView, moment: str, *, settled: bool = False
    ) -> GuardReport | None:
        """Probe the essential services the step names; None when there is nothing to watch
        or the probes themselves could not run (the audit says which)."""
        if not step.guard or not self.guarded:
            return None
        request = GuardRequest(
            incident_id=self.incident_id,
            step_id=step.id,
            services=step.guard,
            moment=moment,
            settled=settled,
        )
        try:
            report: GuardReport = await workflow.execute_local_activity(
                Activity.PROBE_GUARD,
                request,
                result_type=GuardReport,
                start_to_close_timeout=GUARD_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=2),
            )
        except STEP_FAILURES as exc:
            self.record("guard.unavailable", step=step.id, moment=moment, error=error_text(exc))
            return None
        self.record(
            f"guard.{moment}",
            step=step.id,
            services={name: h.model_dump() for name, h in report.services.items()},
        )
        return report

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
        await self.roll_back(step)

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
            **_writes(undone.writes[len(restore.writes) :]),
        )
        if step.automatic and was_holding:
            self._tell_city(CitySignal.CONTAINMENT_ENDED, step)

    async def _call(self, name: str, arg: BaseModel, result_type: type[ResultT]) -> ResultT:
        result: ResultT = await workflow.execute_local_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=STEP_CALL_TIMEOUT,
            schedule_to_close_timeout=STEP_CALL_DEADLINE,
            retry_policy=ADAPTER_RETRY,
        )
        return result

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

    # --- audit ----------------------------------------------------------------------------

    def transition(self, step: StepView, state: StepState, **detail: object) -> None:
        step.state = state
        self.record(f"step.{state.value}", step=step.id, **detail)


def _writes(writes: list[WriteRecord]) -> dict[str, Any]:
    """Every write an adapter made to the target (late and refused ones too), for the
    audit: a write that landed after its timeout must be visible, not only its effect."""
    return {"writes": [w.model_dump(mode="json") for w in writes]} if writes else {}
