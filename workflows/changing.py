"""How IncidentWorkflow changes a target: the plan made durable before apply, the
rollback intent, apply and verify, each recorded in the audit trail as it lands.
StepExecution (execution.py) builds the step's lifecycle on it. Workflow code:
deterministic, and every side effect is a local activity called by name.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import CancelledError as TemporalCancelledError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from contracts.adapter import Plan, Receipt, StepCommand, Verification, WriteRecord
    from contracts.incident import (
        ActingOn,
        Contained,
        ContainRequest,
        GuardLook,
        GuardReport,
        GuardRequest,
        PlanRecording,
        RecordedPlan,
        StepState,
        StepView,
    )
    from contracts.names import APPLY_FAILED, Activity, ErrorType
    from workflows.auditing import AuditTrail

# Plan, apply, verify, rollback and the approvers' dry run run as local activities: a
# regular activity costs a round trip through the server and another workflow task. Runs
# from before PLAN_IN_TASK_PATCH and PREVIEW_IN_TASK_PATCH still plan and dry-run in
# regular ones (see _plan here and deciding.preview).
STEP_CALL_TIMEOUT = timedelta(seconds=10)
STEP_CALL_DEADLINE = timedelta(minutes=2)
# Probes have their own short timeouts; this bounds a whole round (several services).
GUARD_TIMEOUT = timedelta(seconds=15)
ADAPTER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=6,
    non_retryable_error_types=[ErrorType.PERMANENT_ADAPTER],
)
# Histories recorded before it plan each step in a regular activity (see _plan).
PLAN_IN_TASK_PATCH = "plan-in-task"
# Histories recorded before it probe the guard, plan, apply and verify in four local
# activities; runs with it make one call of all four (see _contain).
CONTAIN_PATCH = "contain-in-one-call"
ResultT = TypeVar("ResultT")
# The one call of CONTAIN_PATCH: each part within its own call's limit (the activity
# bounds its verify by STEP_CALL_TIMEOUT), and the attempts of a plan and an apply.
CONTAIN_TIMEOUT = 3 * STEP_CALL_TIMEOUT + GUARD_TIMEOUT
CONTAIN_RETRY = dataclasses.replace(
    ADAPTER_RETRY, maximum_attempts=2 * ADAPTER_RETRY.maximum_attempts
)
# Histories recorded before it act in the task whose local activities found the reason
# to (a guard's look after a change, a drift check); runs with it record the reads first.
READS_PATCH = "reads-recorded-before-acting"
# RECORD_READS is a no-op on any worker; one that never runs only costs its durability.
READS_TIMEOUT = timedelta(seconds=10)
READS_DEADLINE = timedelta(minutes=1)
READS_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=2))
# Histories recorded before it number plans across the run's steps, so a decision that
# differed after a crash shifted them, and never report a plan no change of theirs claims.
PLANS_BY_STEP_PATCH = "plans-by-step"
# How long a failed call waits for the plan it signalled (one task's round trip).
PLAN_WAIT = timedelta(seconds=10)
# How a failed activity surfaces in the workflow: a regular one as ActivityError, a local
# one that failed for good as the ApplicationError itself, a timed-out one as a timeout.
STEP_FAILURES = (ActivityError, ApplicationError, TemporalTimeoutError)


def error_text(exc: BaseException) -> str:
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc
    if isinstance(cause, ApplicationError) and cause.type:
        return f"{cause.type}: {cause.message}"
    return str(cause)


class StepChanges(AuditTrail):
    """The plan, apply and verify of a step's change, and the bookkeeping they share."""

    def __init__(self, **audit: Any) -> None:
        super().__init__(**audit)
        self._applied = 0
        # Whether this run probes essential services (set by the workflow's run, from its
        # patch: histories from before the guard replay without probes).
        self.guarded = False
        # Set at the run's start, from their patches (StepExecution.decide_versions).
        self.plans_in_task = False
        self.contains_at_once = False
        self.records_reads = False
        self.plans_by_step = False
        self.recorded_plans: dict[str, Plan] = {}  # token -> plan (see _plan)
        self.recorded_looks: dict[str, GuardLook] = {}  # token -> the guard's, before it
        self.recorded_commands: dict[str, StepCommand] = {}  # token -> the change planned
        self._plans = 0
        self._step_plans: dict[str, int] = {}  # step id -> plans asked for it in this run
        self._issued: set[str] = set()  # every token this run asked for

    async def change(
        self, step: StepView, *, reapply: bool
    ) -> tuple[GuardReport | None, Verification]:
        """Probe the guard, plan, record the intent, apply and verify; the guard's report
        from before (None: nothing to watch, or it could not probe) and the verification.
        STEP_FAILURES propagate."""
        command = self.command_of(step)
        if self.contains_at_once:
            done = await self._contain(step, command, reapply=reapply)
            probed = done.guard is not None or done.guard_error is not None
            before = self._seen(step, "before", done.guard, done.guard_error) if probed else None
        else:
            done, before = None, await self._probe_guard(step, "before")
        plan = done.plan if done is not None else await self._plan(step, command)
        self._record_intent(step, plan, reapply=reapply)
        self.transition(step, StepState.APPLYING)
        receipt = (
            done.receipt if done is not None else await self._call(Activity.APPLY, command, Receipt)
        )
        step.receipt = receipt
        self._applied += 1
        step.applied_seq = self._applied
        self.transition(step, StepState.APPLIED, detail=receipt.detail, **writes_of(receipt.writes))
        if done is not None and done.verification is not None:
            return before, done.verification
        # Runs before CONTAIN_PATCH, or a verify that raised inside the one call: the
        # change landed and its receipt is recorded; verify now, with retries of its own.
        verification: Verification = await self._call(Activity.VERIFY, receipt, Verification)
        return before, verification

    async def record_reads(self, step: StepView, reason: str) -> None:
        """End this workflow task before acting on what its local activities read.

        Temporal records a local activity's result only when its task completes. A worker
        lost while acting on a read (rolling back after the guard's look, re-applying after
        a drift check) loses the read with it, and the next worker reads again: from a
        target the lost attempt already changed, which now says there is nothing to do
        (dispatch healed by the rollback, the target contained again by the re-apply).
        A regular activity's result comes back in a new task, so awaiting one completes
        this task with every marker before it; the read then replays instead. It costs a
        round trip through the server (not the dev server's 1 s timer tick), and only on
        these rare paths. Runs from before READS_PATCH act in the same task."""
        if not self.records_reads:
            return
        request = ActingOn(incident_id=self.incident_id, step_id=step.id, reason=reason)
        try:
            await workflow.execute_activity(
                Activity.RECORD_READS,
                request,
                start_to_close_timeout=READS_TIMEOUT,
                schedule_to_close_timeout=READS_DEADLINE,
                retry_policy=READS_RETRY,
            )
        except ActivityError as exc:
            # Cancelled (the task awaiting it was): Temporal reports the cancel as the
            # activity's failure, which must stop the caller, not let it act.
            if isinstance(exc.cause, TemporalCancelledError):
                raise asyncio.CancelledError from exc
            # Failed: act anyway; the read is lost with a worker then, as before the patch.

    def _next_token(self, step: StepView) -> str:
        """The token a step's next plan is recorded under: the step's own count of plans in
        this run (PLANS_BY_STEP_PATCH), so a task run again after a crash finds each
        step's recorded plan whatever else its decision now runs; before it, a count
        across all steps."""
        if self.plans_by_step:
            count = self._step_plans[step.id] = self._step_plans.get(step.id, 0) + 1
        else:
            self._plans += 1
            count = self._plans
        token = f"{step.id}#{count}"
        self._issued.add(token)
        return token

    def unclaimed_plans(self) -> list[tuple[str, Plan]]:
        """Plans signalled to this run under a token it never asked for: an attempt of
        one of its tasks, lost with its worker, planned (and perhaps applied) a change
        that this run, deciding again, has not made (PLANS_BY_STEP_PATCH)."""
        if not self.plans_by_step:
            return []
        return [(t, plan) for t, plan in self.recorded_plans.items() if t not in self._issued]

    def issued(self, token: str) -> bool:
        """Whether this run asked for a plan under `token`."""
        return token in self._issued

    async def _contain(self, step: StepView, command: StepCommand, *, reapply: bool) -> Contained:
        """Probe, plan, apply and verify in one local activity (runs with CONTAIN_PATCH):
        each local activity costs the task a hand-off to the worker and back. The plan is
        signalled to this run before apply, as in _plan, and a task run again after a
        crash passes the recorded one in instead of planning again. The activity's result
        is recorded with the task (one marker), in the order the audit tells it."""
        token = self._next_token(step)
        recorded = self.recorded_plans.get(token)
        guard = self._guard_request(step, "before")
        # After a crash the target may already be changed, and the services harmed by it:
        # the guard compares with the look recorded before apply, never a fresh one.
        before = self.recorded_looks.get(token) if recorded is not None else None
        request = ContainRequest(
            command=command, token=token, plan=recorded, guard=guard, before=before
        )
        try:
            done = await self._call(
                Activity.CONTAIN,
                request,
                Contained,
                limit=CONTAIN_TIMEOUT,
                deadline=2 * STEP_CALL_DEADLINE,
                retry=CONTAIN_RETRY,
            )
        except STEP_FAILURES as exc:
            if _may_have_applied(exc):
                await self._applying_failed(step, token, reapply=reapply)
            raise
        plan = self.recorded_plans.setdefault(token, done.plan)
        return done.model_copy(update={"plan": plan})

    async def _applying_failed(self, step: StepView, token: str, *, reapply: bool) -> None:
        """The one call failed for good in or after apply (perhaps an apply that landed
        and timed out): the audit and the step say what apply was meant to change and what
        a person would restore, as when apply failed in a call of its own. The plan's
        signal is already on the server; it reaches this run with its next task."""
        try:
            await workflow.wait_condition(lambda: token in self.recorded_plans, timeout=PLAN_WAIT)
        except TimeoutError:
            return  # it failed before it planned: nothing was applied
        self._record_intent(step, self.recorded_plans[token], reapply=reapply)
        self.transition(step, StepState.APPLYING)

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
        token = self._next_token(step)
        recorded = self.recorded_plans.get(token)
        if recorded is not None:
            return recorded
        plan = await self._call(
            Activity.PLAN_RECORDED, PlanRecording(command=command, token=token), Plan
        )
        # The signal of this plan arrives in a later task, and is then already known.
        return self.recorded_plans.setdefault(token, plan)

    def record_plan(self, recorded: RecordedPlan) -> None:
        """The PLAN_RECORDED signal: the first plan under a token stands, and the guard's
        look before the change that came with it."""
        self.recorded_plans.setdefault(recorded.token, recorded.plan)
        if recorded.before is not None:
            self.recorded_looks.setdefault(recorded.token, recorded.before)
        if recorded.command is not None:
            self.recorded_commands.setdefault(recorded.token, recorded.command)

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

    def command_of(self, step: StepView) -> StepCommand:
        return StepCommand(
            incident_id=self.incident_id,
            step_id=step.id,
            adapter=step.adapter,
            action=step.action,
            target=step.target,
            args=step.args,
        )

    # --- the essential-service guard ----------------------------------------------------

    def _guard_request(
        self, step: StepView, moment: str, *, settled: bool = False
    ) -> GuardRequest | None:
        """What to probe for the step now; None when there is nothing to watch."""
        if not step.guard or not self.guarded:
            return None
        return GuardRequest(
            incident_id=self.incident_id,
            step_id=step.id,
            services=step.guard,
            moment=moment,
            settled=settled,
        )

    async def _probe_guard(
        self, step: StepView, moment: str, *, settled: bool = False
    ) -> GuardReport | None:
        """Probe the essential services the step names; None when there is nothing to watch
        or the probes themselves could not run (the audit says which)."""
        request = self._guard_request(step, moment, settled=settled)
        if request is None:
            return None
        try:
            report: GuardReport = await workflow.execute_local_activity(
                Activity.PROBE_GUARD,
                request,
                result_type=GuardReport,
                start_to_close_timeout=GUARD_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=2),
            )
        except STEP_FAILURES as exc:
            return self._seen(step, moment, None, error_text(exc))
        return self._seen(step, moment, report, None)

    def _seen(
        self, step: StepView, moment: str, report: GuardReport | None, error: str | None
    ) -> GuardReport | None:
        """Audit what a probe found, or why it could not probe."""
        if report is None:
            self.record("guard.unavailable", step=step.id, moment=moment, error=error or "")
            return None
        self.record(
            f"guard.{moment}",
            step=step.id,
            services={name: h.model_dump() for name, h in report.services.items()},
        )
        return report

    # --- calls ------------------------------------------------------------------------------

    async def _call(
        self,
        name: str,
        arg: BaseModel,
        result_type: type[ResultT],
        *,
        limit: timedelta = STEP_CALL_TIMEOUT,
        deadline: timedelta = STEP_CALL_DEADLINE,
        retry: RetryPolicy = ADAPTER_RETRY,
    ) -> ResultT:
        result: ResultT = await workflow.execute_local_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=limit,
            schedule_to_close_timeout=deadline,
            retry_policy=retry,
        )
        return result

    def transition(self, step: StepView, state: StepState, **detail: object) -> None:
        step.state = state
        self.record(f"step.{state.value}", step=step.id, **detail)


def _may_have_applied(exc: BaseException) -> bool:
    """Whether a failed CONTAIN call got as far as apply: it says so in its error's
    details (orchestrator/activities.py, contain_step); a call that timed out may have."""
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc
    if isinstance(cause, ApplicationError):
        return APPLY_FAILED in cause.details
    return True


def writes_of(writes: list[WriteRecord]) -> dict[str, Any]:
    """Every write an adapter made to the target (late and refused ones too), for the
    audit: a write that landed after its timeout must be visible, not only its effect."""
    return {"writes": [w.model_dump(mode="json") for w in writes]} if writes else {}
