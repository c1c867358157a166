"""IncidentWorkflow: one durable workflow per incident key (the affected entity).

Deterministic: every policy evaluation and side effect is a (local) activity, recorded,
so a replay repeats nothing; called by name, so this package never imports orchestrator.

The loop wakes on findings, approvals, a release or a timer (approval deadline, lease,
drift check), then: decide, expire gates and leases, undo steps released one by one,
release or check held steps for drift, execute ready steps, export the audit, continue-
as-new when due. The work is in intake, deciding, deadlines, updates (approve, deny,
extend), resting (release, rest, next incident), carrying, execution, drift, grants, gates.
"""

from __future__ import annotations

import contextlib
import functools
from typing import NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.decision import Decision
    from contracts.findings import FindingEnvelope
    from contracts.incident import (
        ApproveRequest,
        DenyRequest,
        ExtendRequest,
        IncidentCarry,
        IncidentParams,
        IncidentStatus,
        IncidentView,
        RecordedPlan,
        ReleaseRequest,
        ReleaseStepRequest,
        StepState,
        StepView,
    )
    from contracts.names import STATE_QUERY, IncidentSignal, IncidentUpdate
    from contracts.visibility import CONTINUED, IDLE, Visible, visible
    from workflows import carrying, deadlines, deciding, gates, resting, updates, versions
    from workflows.auditing import BATCH_PATCH
    from workflows.deciding import LIST_EARLY_PATCH, PREVIEW_PATCH
    from workflows.drift import DRIFT_PATCH, DriftChecks
    from workflows.execution import GUARD_PATCH, StepExecution
    from workflows.grants import GRANTS_PATCH, GrantGate
    from workflows.intake import BOUNDED_PATCH, Intake
    from workflows.listing import VISIBILITY_PATCH, Listing
    from workflows.resting import HISTORY_PATCH
    from workflows.status import derive_status
    from workflows.updates import RENEW_PATCH, refuse_if
    from workflows.visibility import STATUS

MAX_KEPT_IDS = 100  # decision ids and escalation reasons kept for the view (newest)


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow:
    @workflow.init
    def __init__(self, params: IncidentParams) -> None:
        carry = params.carry
        self._id = params.incident_id
        self._entity = params.entity
        self._bounded: bool | None = None  # decided by the first finding or run(), a patch
        self._max_history = params.max_history_events
        self._decision: Decision | None = carry.decision if carry else None
        self._decisions: list[str] = list(carry.decisions) if carry else []
        self._steps: dict[str, StepView] = {s.id: s for s in carry.steps} if carry else {}
        self._escalations: list[str] = list(carry.escalations) if carry else []
        # Failed, not only escalated by a missed deadline (older carries held failures only).
        self._failing = bool(carry and carry.escalations and carry.failing is not False)
        self._release: ReleaseRequest | None = carry.release_requested if carry else None
        self._step_releases: dict[str, ReleaseStepRequest] = {}  # for the loop to undo
        self._idle = bool(carry and carry.idle)
        self._released = self._idle  # a resting run holds an incident already released
        self._sequence = carry.sequence if carry else 1
        self._earlier: list[str] = list(carry.earlier) if carry else []
        self._fresh = bool(carry and carry.fresh)
        self._history = False  # set by run(): rest after release, number later incidents
        self._previews = False  # set by run(): dry-run plans for steps awaiting approval
        self._renews = False  # set by run(): extend moves the target's own deadline too
        self._list_early = False  # set by run(): a decision's steps listed before slow calls
        self._listing = Listing()  # search attributes and memo for the list
        # A run that starts from findings alone (the next incident after a release) decides.
        self._needs_decision = bool(carry and carry.findings and carry.decision is None)
        self._run = carry.run + 1 if carry else 1
        self._x = StepExecution(
            incident_id=self._id,
            audit_tail=list(carry.audit_tail) if carry else [],
            audit_total=carry.audit_total if carry else 0,
            exported_seq=carry.exported_seq if carry else 0,
            escalate=self._escalate,
            unclaimed=carry.unclaimed if carry else [],
            unclaimed_told=carry.unclaimed_told if carry else [],
        )
        self._in = Intake(carry, self._x.record)
        self._drift = DriftChecks(self._x, params.drift_check_s)
        self._drift.releasing = lambda s: self._release is not None or s.id in self._step_releases
        self._grants = GrantGate(list(carry.used_grants) if carry else [], self._x.record)

    # --- inputs ---------------------------------------------------------------------------

    @workflow.signal(name=IncidentSignal.FINDING)
    def finding(self, envelope: FindingEnvelope) -> None:
        self._needs_decision = self._in.take(
            envelope,
            bounded=self._is_bounded(),
            # While this incident is being closed, the finding opens the next one (run).
            closing=self._release is not None,
            needs_decision=self._needs_decision,
        )

    @workflow.signal(name=IncidentSignal.FINDINGS)
    def findings(self, envelopes: list[FindingEnvelope]) -> None:
        """Findings the API coalesced for one incident (ingest/coalescer.py), in order."""
        for envelope in envelopes:
            self.finding(envelope)

    @workflow.signal(name=IncidentSignal.RECHECK)
    def recheck(self, reason: str) -> None:
        """Verify every held step's target now: a restart undoes containment (wazuh#376)."""
        if not self._drift.enabled or self._released:
            return
        self._drift.recheck = True
        self._x.record("drift.recheck", reason=reason[:200])

    @workflow.signal(name=IncidentSignal.PLAN_RECORDED)
    def plan_recorded(self, recorded: RecordedPlan) -> None:
        self._x.record_plan(recorded)  # sent by the step's own plan: changing.py, _contain

    def _is_bounded(self) -> bool:
        """Whether this run keeps compact findings (a patch: first finding or run() decides)."""
        if self._bounded is None:
            self._bounded = versions.patched(BOUNDED_PATCH)
            if self._bounded:
                self._in.bound()
        return self._bounded

    def _status(self) -> IncidentStatus:
        return derive_status(
            self._decision,
            list(self._steps.values()),
            failed=self._failing and not self._released,
            escalated=not self._released and any(map(deadlines.overdue, self._steps.values())),
            released=self._released,
            closed=self._history and self._in.closed_by_source(),
        )

    @property
    def _incident_id(self) -> str:
        return carrying.incident_id(self._id, self._sequence)

    @workflow.query(name=STATE_QUERY)
    def state(self) -> IncidentView:
        return IncidentView(
            incident_id=self._incident_id,
            status=self._status(),
            entity=self._entity,
            findings=self._in.kept.items,
            findings_received=self._in.received,
            duplicates=self._in.duplicates,
            escalated=bool(self._escalations)
            or (self._decision is not None and self._decision.verdict.value == "escalate"),
            escalations=self._escalations,
            decision=self._decision,
            decisions=self._decisions,
            steps=list(self._steps.values()),
            audit=self._x.audit_tail,
            audit_total=self._x.audit_total,
            run=self._run,
            earlier=self._earlier,
        )

    @workflow.update(name=IncidentUpdate.APPROVE)
    async def approve(self, request: ApproveRequest) -> StepView:
        await self._admit(request, "approve", request.step_id)
        # Checked again: the state may have moved while the grant was verified.
        refuse_if(gates.approval_refusal(self._steps.get(request.step_id), request))
        return updates.approve(self._steps[request.step_id], request, self._x)

    @approve.validator
    def _validate_approve(self, request: ApproveRequest) -> None:
        refuse_if(
            self._other_incident(request.incident_id)
            or gates.approval_refusal(self._steps.get(request.step_id), request)
        )

    @workflow.update(name=IncidentUpdate.DENY)
    async def deny(self, request: DenyRequest) -> StepView:
        await self._admit(request, "deny", request.step_id)
        refuse_if(gates.denial_refusal(self._steps.get(request.step_id), request))
        return updates.deny(self._steps[request.step_id], request, self._x)

    @deny.validator
    def _validate_deny(self, request: DenyRequest) -> None:
        refuse_if(
            self._other_incident(request.incident_id)
            or gates.denial_refusal(self._steps.get(request.step_id), request)
        )

    @workflow.update(name=IncidentUpdate.EXTEND)
    async def extend(self, request: ExtendRequest) -> StepView:
        await self._admit(request, "extend", request.step_id)
        refuse_if(gates.extension_refusal(self._steps.get(request.step_id), request))
        step = self._steps[request.step_id]
        return await updates.extend(step, request, self._x, renews=self._renews)

    @extend.validator
    def _validate_extend(self, request: ExtendRequest) -> None:
        refuse_if(
            self._other_incident(request.incident_id)
            or gates.extension_refusal(self._steps.get(request.step_id), request)
        )

    @workflow.update(name=IncidentUpdate.RELEASE)
    async def release(self, request: ReleaseRequest) -> IncidentView:
        await self._admit(request, "release", None)
        if self._release is not None:  # another release got in while this one was checked
            refuse_if("this incident is already being released")
        self._release = request
        self._x.record(
            "release.requested",
            principal=request.principal.name,
            principal_id=request.principal.id,
            reason=request.reason,
        )
        await workflow.wait_condition(lambda: self._released)
        return self.state()

    @release.validator
    def _validate_release(self, request: ReleaseRequest) -> None:
        refuse_if(self._other_incident(request.incident_id))
        refuse_if("this incident is already being released" if self._release else None)

    @workflow.update(name=IncidentUpdate.RELEASE_STEP)
    async def release_step(self, request: ReleaseStepRequest) -> StepView:
        """Undo one held step, the others stay; the loop undoes it (no lease/drift race)."""
        await self._admit(request, "release", request.step_id)
        refuse_if(self._step_release_refusal(request))
        self._step_releases[request.step_id] = request
        resting.record_step_release(request, self._x)
        await workflow.wait_condition(lambda: request.step_id not in self._step_releases)
        return self._steps[request.step_id]

    @release_step.validator
    def _validate_release_step(self, request: ReleaseStepRequest) -> None:
        refuse_if(self._other_incident(request.incident_id) or self._step_release_refusal(request))

    def _step_release_refusal(self, request: ReleaseStepRequest) -> str | None:
        step, releasing = self._steps.get(request.step_id), self._release is not None
        return gates.step_release_refusal(step, request, self._step_releases, releasing=releasing)

    # --- main loop ------------------------------------------------------------------------

    @workflow.run
    async def run(self, params: IncidentParams) -> IncidentView:
        del params  # kept by __init__
        self._decide_versions()
        if self._idle:
            await self._rest()
        if self._fresh and self._history:
            self._x.record("incident.opened", incident=self._incident_id, earlier=self._earlier)
        while True:
            self._listing.publish(self._visibility)
            # A timeout means an approval deadline, a lease or a drift check is due.
            timer = deadlines.next_timer(
                self._steps.values(), self._drift, self._x.export_deadline()
            )
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(self._has_work, timeout=timer)
            if self._needs_decision:
                self._needs_decision = False
                await self._decide()
            late = functools.partial(self._escalate, failing=False)
            deadlines.expire_gates(self._steps.values(), self._x, late)
            await deadlines.expire_leases(self._steps.values(), self._x)
            await resting.undo_steps(self._step_releases, self._steps, self._x)
            if self._release is not None and not self._released:
                await self._do_release(self._release)
            elif self._release is None:
                await self._drift.check_due(list(self._steps.values()))
            await self._x.execute_ready(self._steps.values())
            exporting = self._x.export_due()
            if exporting:
                self._x.start_export()
            # A findings count that waited goes out with the audit entries of its findings.
            self._listing.publish(self._visibility, counts=exporting)
            if self._released:
                await self._hand_over_released()
                return self.state()
            if self._should_continue_as_new():
                # Unexported entries travel in the carry; the next run exports them. A
                # release (of one step or all) waits for this loop: do it, then hand over.
                await workflow.wait_condition(lambda: resting.quiet(self._x) or self._releasing())
                if self._releasing():
                    continue
                if self._history and self._listing.enabled:  # the next run is the list's row
                    workflow.upsert_search_attributes([STATUS.value_set(CONTINUED)])
                self._continue(self._carry(), status=self._status().value)

    def _decide_versions(self) -> None:
        """Once, at each run's start: a patch asked deep in the loop can meet its marker
        at another point of a replay than it was made."""
        self._previews = versions.patched(PREVIEW_PATCH)
        self._x.guarded = versions.patched(GUARD_PATCH)
        self._listing.enabled = versions.patched(VISIBILITY_PATCH)
        self._renews = versions.patched(RENEW_PATCH)
        self._drift.enabled = versions.patched(DRIFT_PATCH)
        self._is_bounded()
        self._history = versions.patched(HISTORY_PATCH)
        self._grants.enabled = versions.patched(GRANTS_PATCH)
        self._x.batched = versions.patched(BATCH_PATCH)
        self._listing.counts_wait = self._x.batched
        self._list_early = versions.patched(LIST_EARLY_PATCH)
        self._x.decide_versions()

    async def _hand_over_released(self) -> None:
        """After a release: findings that came during it open the entity's next incident;
        otherwise it rests, readable and listed (runs from before HISTORY_PATCH end)."""
        self._x.unclaimed.report(self._steps.values(), final=True)  # before the audit's flush
        await resting.settle(self._x)
        self._open_next_incident()
        if self._history:
            self._continue(self._carry(idle=True), status=IDLE)

    async def _rest(self) -> None:
        """A released incident, kept readable (the release run is its row in the list);
        the entity's next finding opens the next incident, numbered and linked."""
        if self._listing.enabled:
            workflow.upsert_search_attributes([STATUS.value_set(IDLE)])
        await resting.rest(self._in.after_release, self._x, self._max_history)
        await resting.settle(self._x)
        self._open_next_incident()
        self._continue(self._carry(idle=True), status=IDLE)

    def _continue(self, carry: IncidentCarry, *, status: str) -> NoReturn:
        carrying.continue_as_new(
            carry,
            status=status,
            listed=self._history and self._listing.enabled,
            key=self._id,
            entity=self._entity,
            max_history=self._max_history,
            drift_check_s=self._drift.interval_s,
        )

    def _should_continue_as_new(self) -> bool:
        return carrying.due(released=self._released, max_history=self._max_history)

    def _releasing(self) -> bool:
        return bool(self._step_releases) or (self._release is not None and not self._released)

    def _has_work(self) -> bool:
        return (
            self._needs_decision
            or self._drift.recheck
            or self._releasing()
            or any(s.state in (StepState.PLANNED, StepState.APPROVED) for s in self._steps.values())
            or self._should_continue_as_new()
            or self._x.export_due()
            or self._x.rearm
            or self._listing.stale(self._visibility)
            or self._x.unclaimed.pending(self._steps.values())
        )

    async def _decide(self) -> None:
        decision = await deciding.decide(self._id, self._in.kept.items)
        self._decision = decision
        self._decisions.append(decision.decision_id)
        if self._bounded:  # every decision is in the audit; the view shows the newest
            del self._decisions[:-MAX_KEPT_IDS]
        listed = (lambda: self._listing.publish(self._visibility)) if self._list_early else None
        await deciding.plan(decision, self._steps, self._x, previews=self._previews, listed=listed)

    async def _do_release(self, request: ReleaseRequest) -> None:
        await resting.undo(self._steps.values(), self._x, request)
        self._released = True
        self._x.record(
            "incident.released",
            principal=request.principal.name,
            principal_id=request.principal.id,
        )

    # --- bookkeeping ----------------------------------------------------------------------

    def _visibility(self) -> Visible:
        return visible(
            status=self._status(),
            entity=self._entity,
            findings=self._listing.shown(self._in.kept.items),
            received=self._in.received,
            decision=self._decision,
            steps=list(self._steps.values()),
            incident_id=self._incident_id if self._history else "",
        )

    def _carry(self, *, idle: bool = False) -> IncidentCarry:
        self._x.unclaimed.report(self._steps.values(), final=True)  # none claims one after
        return carrying.carry(
            self._in,
            self._x,
            self._grants,
            decision=self._decision,
            decisions=self._decisions,
            steps=list(self._steps.values()),
            escalations=self._escalations,
            failing=self._failing,
            release=self._release,
            run=self._run,
            sequence=self._sequence,
            earlier=self._earlier,
            idle=idle,
        )

    def _open_next_incident(self) -> None:
        """Findings that came during the release open the entity's next incident."""
        if not self._in.after_release.items:
            return
        carry = resting.next_incident(
            self._in,
            self._x,
            self._grants,
            run=self._run,
            sequence=self._sequence,
            earlier=self._earlier,
            current=self._incident_id,
            bounded=bool(self._bounded),
        )
        self._continue(carry, status=IncidentStatus.OPEN.value)

    def _escalate(self, reason: str, *, failing: bool = True) -> None:
        """A human must act: failed, or escalated when only an approval deadline passed."""
        self._failing = self._failing or failing
        self._escalations.append(reason)
        if self._bounded:
            del self._escalations[:-MAX_KEPT_IDS]
        self._x.record("incident.escalated", reason=reason)

    async def _admit(
        self,
        request: ApproveRequest | DenyRequest | ExtendRequest | ReleaseRequest,
        action: str,
        step_id: str | None,
    ) -> None:
        await self._grants.admit(
            request, action=action, incident_id=self._incident_id, step_id=step_id
        )

    def _other_incident(self, incident_id: str | None) -> str | None:
        return updates.other_incident(incident_id, self._incident_id)
