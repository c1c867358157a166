"""Changes a lost worker made that this run has not made again (PLANS_BY_STEP_PATCH).

A worker that dies in the middle of a workflow task loses the task's local activity
results, and the next worker runs the task again: it decides again, and may decide
otherwise (the kill switch was engaged meanwhile, a policy or the city changed). The
plans the lost attempt signalled before each apply are still in the run's history. One
under a token this run never asks for is a change that may have landed on its target and
that nothing in this run holds or will undo, unless the run already restores the step's
pre-incident state on its own. A person is told what it was and what the target held
before (`step.unclaimed`, and the incident escalated); if the step runs later (approved,
say), it finds the plan and keeps the target's state from before the lost change, also
in the next run after continue-as-new (the carry). Workflow code: deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.incident import RecordedPlan, StepState, StepView
    from workflows.changing import StepChanges

# States in which the run itself restores the step's pre-incident state (it holds the
# change, or undoes or undid it): a lost re-apply of such a step is covered by that.
RESTORED_BY_THE_RUN = (
    StepState.APPLIED,
    StepState.VERIFIED,
    StepState.ROLLING_BACK,
    StepState.ROLLED_BACK,
)


def step_of(token: str) -> str:
    return token.rpartition("#")[0]


class UnclaimedPlans:
    def __init__(
        self,
        changes: StepChanges,
        carried: Sequence[RecordedPlan],
        carried_told: Sequence[str],
        escalate: Callable[[str], None],
    ) -> None:
        self._x = changes
        self._carried = list(carried)
        self._carried_told = list(carried_told)  # tokens of `carried` told already
        self._escalate = escalate
        self._told: set[str] = set()  # tokens already considered
        self._open: dict[str, RecordedPlan] = {}  # reported ones, for the next run too

    def start(self) -> None:
        """At the run's start, once its versions are decided: plans the last run reported
        come with the carry, under the token this run's first plan of their step gets."""
        if not self._x.plans_by_step:
            return
        for recorded in self._carried:
            self._x.record_plan(recorded)
            self._open[recorded.token] = recorded
        self._told.update(self._carried_told)

    def pending(self, steps: Iterable[StepView]) -> bool:
        """Whether a report is due now (the loop wakes for it: a handler that ends, say a
        step's release, changes nothing else the loop would wake for)."""
        return self._caught_up(steps) and any(
            token not in self._told for token, _ in self._x.unclaimed_plans()
        )

    def _caught_up(self, steps: Iterable[StepView]) -> bool:
        """The run has caught up with the lost attempt: no handler (an approval checking
        its grant) is still running and no step waits to run; either may yet claim one."""
        if not self._x.plans_by_step or not workflow.all_handlers_finished():
            return False
        return not any(s.state in (StepState.PLANNED, StepState.APPROVED) for s in steps)

    def report(self, steps: Iterable[StepView], *, final: bool = False) -> None:
        """Tell a person of each plan no change of this run claims, once the run has
        caught up; `final` when it hands over (released, or continuing as new), since
        nothing in it will claim one after that, except a step about to run, which the
        next run runs first (its plan is carried, untold)."""
        steps = list(steps)
        if not self._x.plans_by_step or not (final or self._caught_up(steps)):
            return
        by_id = {step.id: step for step in steps}
        for token, plan in self._x.unclaimed_plans():
            if token in self._told:
                continue
            command = self._x.recorded_commands.get(token)
            look = self._x.recorded_looks.get(token)
            recorded = RecordedPlan(token=token, plan=plan, before=look, command=command)
            known = by_id.get(step_of(token))
            if known is not None and known.state in (StepState.PLANNED, StepState.APPROVED):
                self._open[token] = recorded  # (final) the next run runs it first: untold
                continue
            self._told.add(token)
            change = command.model_dump(include={"adapter", "action", "target"}) if command else {}
            covered = (
                known is not None
                and known.reversible
                and known.receipt is not None
                and known.state in RESTORED_BY_THE_RUN
            )
            detail = {"before": plan.before, "after": plan.after, "covered": covered, **change}
            self._x.record("step.unclaimed", step=step_of(token), token=token, **detail)
            if covered:
                continue  # a lost re-apply of a step this run holds, undoes or undid
            self._open[token] = recorded
            what = f"{command.action} on {command.target}" if command else "its change"
            self._escalate(
                f"step {step_of(token)}: a worker was lost while it made {what}, and this run "
                f"has not made it again: the target may still hold it (before: {plan.before})"
            )

    def to_carry(self) -> tuple[list[RecordedPlan], list[str]]:
        """Plans that no change of this run claimed, under the token the next run's first
        plan of their step gets, and which of those tokens were told already."""
        carried = [
            recorded.model_copy(update={"token": f"{step_of(token)}#1"})
            for token, recorded in self._open.items()
            if not self._x.issued(token)
        ]
        told = [step_of(t) + "#1" for t in self._open if t in self._told and not self._x.issued(t)]
        return carried, told
