"""IncidentWorkflow: one durable workflow per incident key (the affected entity).

Deterministic orchestration only: every policy evaluation and every side effect on a
target is a (local) activity, so the history records it and a replay repeats nothing.
Activities are called by name so this package never imports the orchestrator.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from adapters.base import Plan, Receipt, StepCommand, Verification
    from workflows.model import (
        AuditEntry,
        DecideRequest,
        Decision,
        Finding,
        FindingEnvelope,
        IncidentParams,
        IncidentView,
        StepState,
        StepView,
        Verdict,
    )
    from workflows.status import derive_status

# Short calls (decide, plan, apply, verify on a fast target) run as local activities: each
# regular activity dispatch costs ~50 ms on the dev server, which would dominate containment.
LOCAL_CALL_TIMEOUT = timedelta(seconds=10)
LOCAL_CALL_DEADLINE = timedelta(minutes=2)
ADAPTER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=6,
    non_retryable_error_types=["PermanentAdapterError"],
)
ResultT = TypeVar("ResultT")
DECIDE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3)


def _error_text(exc: BaseException) -> str:
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc
    if isinstance(cause, ApplicationError) and cause.type:
        return f"{cause.type}: {cause.message}"
    return str(cause)


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow:
    @workflow.init
    def __init__(self, params: IncidentParams) -> None:
        self._params = params
        self._findings: list[Finding] = []
        self._seen: set[str] = set()
        self._duplicates = 0
        self._needs_decision = False
        self._decision: Decision | None = None
        self._steps: dict[str, StepView] = {}
        self._audit: list[AuditEntry] = []
        self._escalations: list[str] = []

    # --- inputs ---------------------------------------------------------------------------

    @workflow.signal(name="finding")
    def finding(self, envelope: FindingEnvelope) -> None:
        keys = [f"finding:{envelope.finding.finding_info.uid}"]
        if envelope.webhook_id:
            keys.append(f"webhook:{envelope.source}:{envelope.webhook_id}")
        if any(key in self._seen for key in keys):
            self._duplicates += 1
            self._record("finding.duplicate", uid=envelope.finding.finding_info.uid)
            return
        self._seen.update(keys)
        self._findings.append(envelope.finding)
        self._needs_decision = True
        self._record(
            "finding.received",
            uid=envelope.finding.finding_info.uid,
            source=envelope.source,
            severity_id=int(envelope.finding.severity_id),
        )

    @workflow.query(name="state")
    def state(self) -> IncidentView:
        return IncidentView(
            incident_id=self._params.incident_id,
            status=derive_status(
                self._decision, list(self._steps.values()), failed=bool(self._escalations)
            ),
            entity=self._params.entity,
            findings=self._findings,
            duplicates=self._duplicates,
            decision=self._decision,
            steps=list(self._steps.values()),
            audit=self._audit,
            escalated=bool(self._escalations)
            or (self._decision is not None and self._decision.verdict is Verdict.ESCALATE),
            escalations=self._escalations,
        )

    # --- main loop ------------------------------------------------------------------------

    @workflow.run
    async def run(self, params: IncidentParams) -> IncidentView:
        del params  # kept by __init__
        while True:
            await workflow.wait_condition(lambda: self._needs_decision)
            self._needs_decision = False
            await self._decide()
            ready = [s for s in self._steps.values() if s.state is StepState.PLANNED]
            await asyncio.gather(*(self._execute(step) for step in ready))

    async def _decide(self) -> None:
        request = DecideRequest(incident_id=self._params.incident_id, findings=self._findings)
        decision = await workflow.execute_local_activity(
            "decide",
            request,
            result_type=Decision,
            start_to_close_timeout=LOCAL_CALL_TIMEOUT,
            retry_policy=DECIDE_RETRY,
        )
        self._decision = decision
        self._record(
            "decision",
            verdict=decision.verdict.value,
            policy_version=decision.policy_version,
            decision_id=decision.decision_id,
            steps=[s.id for s in decision.steps],
        )
        # Plan merge by step id: a step already known keeps its state and receipt.
        for step in decision.steps:
            if step.id in self._steps:
                continue
            needs_approval = step.approval.required > 0
            self._steps[step.id] = StepView(
                id=step.id,
                adapter=step.adapter,
                action=step.action,
                target=step.target,
                args=step.args,
                reversible=step.reversible,
                required_approvals=step.approval.required,
                state=StepState.AWAITING_APPROVAL if needs_approval else StepState.PLANNED,
            )
            self._record("step.planned", step=step.id, awaiting_approval=needs_approval)

    async def _execute(self, step: StepView) -> None:
        command = StepCommand(
            incident_id=self._params.incident_id,
            step_id=step.id,
            adapter=step.adapter,
            action=step.action,
            target=step.target,
            args=step.args,
        )
        try:
            plan = await self._call("plan_step", command, Plan)
            # The rollback intent is durable before apply runs: an apply can land even when
            # its activity times out, and a retried apply only sees the changed target.
            step.rollback_intent = plan.before
            self._record("step.intent", step=step.id, before=plan.before, after=plan.after)
            self._transition(step, StepState.APPLYING)
            receipt = await self._call("apply_step", command, Receipt)
            step.receipt = receipt
            self._transition(step, StepState.APPLIED, detail=receipt.detail)
            verification = await self._call("verify_step", receipt, Verification)
            step.verification = verification.model_dump()
        except ActivityError as exc:
            step.error = _error_text(exc)
            self._transition(step, StepState.FAILED, error=step.error)
            self._escalate(f"step {step.id}: {step.error}")
            return
        if verification.ok:
            self._set_lease(step)
            self._transition(step, StepState.VERIFIED, observed=verification.observed)
            return
        step.error = f"verification failed: {verification.detail}"
        self._transition(step, StepState.FAILED, error=step.error)
        self._escalate(f"step {step.id}: {step.error}")
        await self._roll_back(step)

    async def _roll_back(self, step: StepView) -> None:
        if step.receipt is None or not step.reversible:
            return
        restore = step.receipt.model_copy(update={"before": step.rollback_intent or {}})
        self._transition(step, StepState.ROLLING_BACK)
        try:
            undone = await self._call("rollback_step", restore, Receipt)
            check = await self._call("verify_step", undone, Verification)
        except ActivityError as exc:
            step.error = f"rollback failed: {_error_text(exc)}"
            self._transition(step, StepState.FAILED, error=step.error)
            self._escalate(f"step {step.id}: {step.error}")
            return
        step.receipt = undone
        step.verification = check.model_dump()
        self._transition(step, StepState.ROLLED_BACK, verified=check.ok)

    async def _call(self, name: str, arg: BaseModel, result_type: type[ResultT]) -> ResultT:
        result: ResultT = await workflow.execute_local_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=LOCAL_CALL_TIMEOUT,
            schedule_to_close_timeout=LOCAL_CALL_DEADLINE,
            retry_policy=ADAPTER_RETRY,
        )
        return result

    # --- bookkeeping ----------------------------------------------------------------------

    def _set_lease(self, step: StepView) -> None:
        decided = self._decision.steps if self._decision else []
        lease_s = next((s.lease_s for s in decided if s.id == step.id), None)
        if step.reversible and lease_s:
            step.lease_expires_at = (workflow.now() + timedelta(seconds=lease_s)).isoformat()

    def _escalate(self, reason: str) -> None:
        """The incident needs a human: it shows as failed until someone acts."""
        self._escalations.append(reason)
        self._record("incident.escalated", reason=reason)

    def _transition(self, step: StepView, state: StepState, **detail: object) -> None:
        step.state = state
        self._record(f"step.{state.value}", step=step.id, **detail)

    def _record(self, kind: str, **detail: object) -> None:
        self._audit.append(
            AuditEntry(
                seq=len(self._audit) + 1,
                at=workflow.now().isoformat(),
                kind=kind,
                detail=detail,
            )
        )
