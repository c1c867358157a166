"""Drift checks: while a step holds, its target is verified again on a schedule.

A containment can be undone without anyone telling Bulkhead: a controller that reboots
into its normal mode, an operator who reverts by hand, an agent that loses a revert on
restart (Wazuh, wazuh#376). Each held step's target is observed every `interval`; one
found out of its contained state is applied again or escalated, as the policy said
(`drift` on the decision's step). Workflow code: deterministic, verify is the same local
activity as after apply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.decision import OnDrift
    from contracts.incident import StepView
    from workflows import gates
    from workflows.changing import STEP_FAILURES, error_text
    from workflows.execution import StepExecution

# Histories from before drift checks replay without their timers and verify calls.
DRIFT_PATCH = "drift-checks"


def _watched(step: StepView) -> bool:
    """Held, with a lease, and applied: a step Bulkhead still answers for."""
    held = step.state in gates.HOLDING
    return held and step.lease_expires_at is not None and step.receipt is not None


class DriftChecks:
    def __init__(self, execution: StepExecution, interval_s: int) -> None:
        self.interval_s = interval_s
        self._x = execution
        self._interval = timedelta(seconds=interval_s)
        # Steps whose last check could not reach the target: said once per outage.
        self._unreachable: set[str] = set()
        # Set by the workflow's run, from its patch (see DRIFT_PATCH).
        self.enabled = False
        # A worker or the lab restarted: every held step is checked now, not at its time.
        self.recheck = False
        # Whether a release of the step was asked for (set by the workflow).
        self.releasing: Callable[[StepView], bool] = lambda step: False

    def _due_at(self, step: StepView) -> datetime:
        if step.drift_checked_at is None or self.recheck:  # held since before drift checks,
            return workflow.now()  # or asked to check again after a restart: check now
        return datetime.fromisoformat(step.drift_checked_at) + self._interval

    def deadlines(self, steps: Iterable[StepView]) -> list[datetime]:
        """When the workflow must wake for the next checks (none while disabled)."""
        if not self.enabled:
            return []
        return [self._due_at(step) for step in steps if _watched(step)]

    async def check_due(self, steps: Iterable[StepView]) -> None:
        if not self.enabled:
            return
        now = workflow.now()
        due = [step for step in steps if _watched(step) and self._due_at(step) <= now]
        self.recheck = False
        if due:
            await asyncio.gather(*(self._check(step) for step in due))

    async def _check(self, step: StepView) -> None:
        try:
            verification = await self._x.observe(step)
        except STEP_FAILURES as exc:
            # Nothing can be concluded about a target that does not answer; the next
            # check tries again (a rebooting device is back soon, and then re-checked).
            step.drift_checked_at = workflow.now().isoformat()
            if step.id not in self._unreachable:
                self._unreachable.add(step.id)
                self._x.record("step.drift_unchecked", step=step.id, error=error_text(exc))
            return
        if step.state not in gates.HOLDING:
            return  # the guard's watch undid it while the target was read (execution.py)
        self._unreachable.discard(step.id)
        step.drift_checks += 1
        step.drift_checked_at = workflow.now().isoformat()
        if verification.ok:
            step.verification = verification.model_dump()
            return
        if self._x.tripping(step):
            return  # the guard found the change harmful and is undoing it: no re-apply
        self._x.record(
            "step.drift",
            step=step.id,
            adapter=step.adapter,
            outcome=step.drift.value,
            observed=verification.observed,
            detail=verification.detail,
        )
        if step.drift is OnDrift.ESCALATE:
            self._x.abandon(step, f"drift: {verification.detail}; left as found (policy: escalate)")
            return
        # Re-applying contains the target again: a crash mid-re-apply must replay this
        # check, not verify again and find the target contained by an apply never recorded.
        await self._x.record_reads(step, "step.drift")
        if not self._x.records_reads or self._still_held(step):  # (runs before its patch)
            await self._x.execute(step, reapply=True)

    def _still_held(self, step: StepView) -> bool:
        """After the wait for record_reads: nothing meanwhile ended the hold or is about
        to (the guard's rollback, a release asked for, the lease's end); those undo the
        step on the loop's next pass, and a re-apply now would only fight them."""
        if step.state not in gates.HOLDING or self._x.tripping(step) or self.releasing(step):
            return False
        ends = step.lease_expires_at
        return ends is None or datetime.fromisoformat(ends) > workflow.now()
