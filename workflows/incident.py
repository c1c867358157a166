"""IncidentWorkflow: one durable workflow per incident key (the affected entity).

Deterministic orchestration only: every policy evaluation and every side effect on a
target is a (local) activity, so the history records it and a replay repeats nothing.
Activities are called by name so this package never imports the orchestrator.

The run loop wakes on new findings, approvals, a release, or the next timer (approval
deadline, lease expiry, drift check) and then does, in order: decide, expire gates,
expire leases, release or check held steps for drift, execute ready steps, export the
audit trail, continue-as-new when due.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.adapter import Receipt
    from contracts.compact import compact, short_key
    from contracts.decision import DecideRequest, Decision, OnTimeout
    from contracts.findings import ActivityId, Finding, FindingEnvelope
    from contracts.incident import (
        ApprovalRecord,
        ApproveRequest,
        DenyRequest,
        ExtendRequest,
        IncidentCarry,
        IncidentParams,
        IncidentStatus,
        IncidentView,
        ReleaseRequest,
        RenewLeaseRequest,
        StepState,
        StepView,
    )
    from contracts.names import STATE_QUERY, Activity, ErrorType, IncidentSignal, IncidentUpdate
    from contracts.visibility import CONTINUED, IDLE, STATUS, Visible, visible
    from workflows import gates
    from workflows.drift import DRIFT_PATCH, DriftChecks
    from workflows.execution import (
        ADAPTER_RETRY,
        GUARD_PATCH,
        STEP_CALL_TIMEOUT,
        STEP_FAILURES,
        StepExecution,
    )
    from workflows.grants import GRANTS_PATCH, GrantGate
    from workflows.kept import KeptFindings
    from workflows.picture import MAX_PICTURE, changes_picture, new_keys, stored_key
    from workflows.status import derive_status

MAX_SEEN = 10_000  # dedupe memory per incident; the oldest keys are forgotten first
MAX_KEPT_IDS = 100  # decision ids and escalation reasons kept for the view (newest)
DEFAULT_LEASE_S = 3600  # a reversible change never stays without a lease
DECIDE_TIMEOUT = timedelta(seconds=10)
PREVIEW_PATCH = "preview-plans"  # histories from before previews replay without them
VISIBILITY_PATCH = "visibility"  # older histories never upserted search attributes
RENEW_PATCH = "renew-lease-on-target"  # older extends moved only the workflow's lease
# Older runs kept findings whole (raw payload included) and remembered keys verbatim.
BOUNDED_PATCH = "bounded-findings"
# Older runs completed at release, so the entity's next incident reused the id and lost
# the link to this one; newer ones rest (idle) and number the next incident.
HISTORY_PATCH = "incident-history"
MAX_EARLIER = 50  # earlier incident ids kept per entity (the audit keeps them all)


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def _dedupe_key(finding: Finding) -> str:
    """A create is known by its uid; an update or close of it by uid, kind and time, so the
    same update posted twice is a duplicate but each new update is news."""
    uid = finding.finding_info.uid
    if finding.activity_id in (ActivityId.UPDATE, ActivityId.CLOSE):
        return f"finding:{uid}:{int(finding.activity_id)}:{finding.time}"
    return f"finding:{uid}"


def _incident_id(key: str, sequence: int) -> str:
    """The entity's first incident is known by its key; later ones by key@n."""
    return key if sequence == 1 else f"{key}@{sequence}"


def _forget_oldest(keys: dict[str, None], limit: int) -> None:
    while len(keys) > limit:
        del keys[next(iter(keys))]


def _claim(finding: Finding) -> dict[str, object]:
    """Where the finding's raw payload is kept and what was cut from it, for the audit."""
    claim: dict[str, object] = {}
    if finding.raw_ref is not None:
        claim["raw_sha256"] = finding.raw_ref.sha256
        claim["raw_bytes"] = finding.raw_ref.bytes
    if finding.truncated:
        claim["truncated"] = finding.truncated
    return claim


def _received_kind(finding: Finding, *, updated: bool) -> str:
    if not updated:
        return "finding.received"
    return "finding.closed" if finding.activity_id is ActivityId.CLOSE else "finding.updated"


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow:
    @workflow.init
    def __init__(self, params: IncidentParams) -> None:
        carry = params.carry
        self._id = params.incident_id
        self._entity = params.entity
        self._kept = KeptFindings(list(carry.findings) if carry else [])
        self._bounded: bool | None = None  # decided by the first finding or run(), a patch
        self._seen: dict[str, None] = dict.fromkeys(carry.seen) if carry else {}
        self._duplicates = carry.duplicates if carry else 0
        self._received = carry.findings_received if carry else 0
        self._max_history = params.max_history_events
        self._decision: Decision | None = carry.decision if carry else None
        self._decisions: list[str] = list(carry.decisions) if carry else []
        self._steps: dict[str, StepView] = {s.id: s for s in carry.steps} if carry else {}
        self._escalations: list[str] = list(carry.escalations) if carry else []
        self._picture: dict[str, None] = dict.fromkeys(carry.picture) if carry else {}
        self._release: ReleaseRequest | None = carry.release_requested if carry else None
        self._idle = bool(carry and carry.idle)
        self._released = self._idle  # a resting run holds an incident already released
        self._sequence = carry.sequence if carry else 1
        self._earlier: list[str] = list(carry.earlier) if carry else []
        self._fresh = bool(carry and carry.fresh)
        self._history = False  # set by run(): rest after release, number later incidents
        self._after_release = KeptFindings([])
        self._previews = False  # set by run(): dry-run plans for steps awaiting approval
        self._visible = False  # set by run(): search attributes and memo for the list
        self._renews = False  # set by run(): extend moves the target's own deadline too
        self._published: Visible | None = None
        # A run that starts from findings alone (the next incident after a release) decides.
        self._needs_decision = bool(carry and carry.findings and carry.decision is None)
        self._run = carry.run + 1 if carry else 1
        self._x = StepExecution(
            incident_id=self._id,
            audit_tail=list(carry.audit_tail) if carry else [],
            audit_total=carry.audit_total if carry else 0,
            exported_seq=carry.exported_seq if carry else 0,
            escalate=self._escalate,
        )
        self._drift = DriftChecks(self._x, params.drift_check_s)
        self._grants = GrantGate(list(carry.used_grants) if carry else [], self._x.record)

    # --- inputs ---------------------------------------------------------------------------

    @workflow.signal(name=IncidentSignal.FINDING)
    def finding(self, envelope: FindingEnvelope) -> None:
        bounded = self._is_bounded()
        finding = compact(envelope.finding) if bounded else envelope.finding
        keys = [_dedupe_key(finding)]
        if envelope.webhook_id:
            keys.append(f"webhook:{envelope.source}:{envelope.webhook_id}")
        if any(key in self._seen or short_key(key) in self._seen for key in keys):
            self._duplicates += 1
            self._x.record("finding.duplicate", uid=finding.finding_info.uid)
            return
        self._received += 1
        for key in keys:
            self._seen[short_key(key) if bounded else key] = None
        _forget_oldest(self._seen, MAX_SEEN)
        if self._release is not None:
            # This incident is being closed: the finding opens the next one (see run).
            self._after_release.add(finding, news=True)
            self._x.record(
                "finding.after_release", uid=finding.finding_info.uid, source=envelope.source
            )
            return
        news = changes_picture(self._picture, finding)
        updated = self._kept.replace(finding)
        if not updated:
            self._kept.add(finding, news=news)
        self._needs_decision = self._needs_decision or news
        self._remember(finding, bounded=bounded)
        self._x.record(
            _received_kind(finding, updated=updated),
            uid=finding.finding_info.uid,
            source=envelope.source,
            severity_id=int(finding.severity_id),
            changes_picture=self._needs_decision,
            **_claim(finding),
        )

    @workflow.signal(name=IncidentSignal.RECHECK)
    def recheck(self, reason: str) -> None:
        """Verify every held step's target now: a worker or the lab restarted, and a
        restart is when a containment is most often undone unseen (wazuh#376)."""
        if not self._drift.enabled or self._released:
            return
        self._drift.recheck = True
        self._x.record("drift.recheck", reason=reason[:200])

    def _is_bounded(self) -> bool:
        """Whether this run keeps compact findings and digests of keys (a patch, decided
        once per run: by its first finding, or by run() if no finding comes first)."""
        if self._bounded is None:
            self._bounded = workflow.patched(BOUNDED_PATCH)
            if self._bounded:
                self._kept.bound()
                self._after_release.bound()
        return self._bounded

    def _remember(self, finding: Finding, *, bounded: bool) -> None:
        for key in new_keys(self._picture, finding):
            self._picture[stored_key(key) if bounded else key] = None
        if bounded:
            _forget_oldest(self._picture, MAX_PICTURE)

    def _status(self) -> IncidentStatus:
        return derive_status(
            self._decision,
            list(self._steps.values()),
            failed=bool(self._escalations) and not self._released,
            released=self._released,
            closed=self._history and self._closed_by_source(),
        )

    def _closed_by_source(self) -> bool:
        """Every finding kept was closed by the SIEM that raised it."""
        kept = self._kept.items
        return bool(kept) and all(f.activity_id is ActivityId.CLOSE for f in kept)

    @property
    def _incident_id(self) -> str:
        return _incident_id(self._id, self._sequence)

    @workflow.query(name=STATE_QUERY)
    def state(self) -> IncidentView:
        steps = list(self._steps.values())
        return IncidentView(
            incident_id=self._incident_id,
            status=self._status(),
            entity=self._entity,
            findings=self._kept.items,
            findings_received=self._received,
            duplicates=self._duplicates,
            escalated=bool(self._escalations)
            or (self._decision is not None and self._decision.verdict.value == "escalate"),
            escalations=self._escalations,
            decision=self._decision,
            decisions=self._decisions,
            steps=steps,
            audit=self._x.audit_tail,
            audit_total=self._x.audit_total,
            run=self._run,
            earlier=self._earlier,
        )

    @workflow.update(name=IncidentUpdate.APPROVE)
    async def approve(self, request: ApproveRequest) -> StepView:
        await self._admit(request, "approve", request.step_id)
        # Checked again: the state may have moved while the grant was verified.
        self._refuse_if(gates.approval_refusal(self._steps.get(request.step_id), request))
        step = self._steps[request.step_id]
        step.approvals.append(self._record_of(request))
        self._x.record(
            "step.approval",
            step=step.id,
            principal=request.principal.name,
            principal_id=request.principal.id,
            reason=request.reason,
            authz_decision_id=request.authz_decision_id,
        )
        if gates.approvals_complete(step):
            step.approval_deadline = None
            self._x.transition(step, StepState.APPROVED)
        return step

    @approve.validator
    def _validate_approve(self, request: ApproveRequest) -> None:
        self._refuse_if(
            self._other_incident(request.incident_id)
            or gates.approval_refusal(self._steps.get(request.step_id), request)
        )

    @workflow.update(name=IncidentUpdate.DENY)
    async def deny(self, request: DenyRequest) -> StepView:
        await self._admit(request, "deny", request.step_id)
        self._refuse_if(gates.denial_refusal(self._steps.get(request.step_id), request))
        step = self._steps[request.step_id]
        step.denial = self._record_of(request)
        step.approval_deadline = None
        self._x.transition(
            step,
            StepState.DENIED,
            principal=request.principal.name,
            principal_id=request.principal.id,
            reason=request.reason,
        )
        return step

    @deny.validator
    def _validate_deny(self, request: DenyRequest) -> None:
        self._refuse_if(
            self._other_incident(request.incident_id)
            or gates.denial_refusal(self._steps.get(request.step_id), request)
        )

    @workflow.update(name=IncidentUpdate.EXTEND)
    async def extend(self, request: ExtendRequest) -> StepView:
        await self._admit(request, "extend", request.step_id)
        self._refuse_if(gates.extension_refusal(self._steps.get(request.step_id), request))
        step = self._steps[request.step_id]
        if step.lease_expires_at is None:  # the validator refuses this; kept for the types
            raise ApplicationError(f"step {step.id} holds no lease", type=ErrorType.REFUSED)
        before = step.lease_expires_at
        expires = _parse(before) + timedelta(seconds=request.lease_s)
        step.lease_expires_at = expires.isoformat()
        if self._renews and step.receipt is not None:
            await self._renew_on_target(step, before, request)
        self._x.record(
            "lease.extended",
            step=step.id,
            principal=request.principal.name,
            principal_id=request.principal.id,
            lease_expires_at=step.lease_expires_at,
            reason=request.reason,
        )
        return step

    async def _renew_on_target(self, step: StepView, before: str, request: ExtendRequest) -> None:
        """Move the target's own deadline (a dead-man's switch) with the lease, or keep
        the old lease: a console that shows a step held while the target lets go at the
        old time is worse than a refused extension."""
        if step.receipt is None or step.lease_expires_at is None:
            return
        renewal = RenewLeaseRequest(receipt=step.receipt, expires_at=step.lease_expires_at)
        try:
            step.receipt = await workflow.execute_activity(
                Activity.RENEW_LEASE,
                renewal,
                result_type=Receipt,
                start_to_close_timeout=STEP_CALL_TIMEOUT,
                retry_policy=ADAPTER_RETRY,
            )
        except STEP_FAILURES as exc:
            step.lease_expires_at = before
            error = str(exc.cause or exc) if isinstance(exc, ActivityError) else str(exc)
            self._x.record(
                "lease.not_extended", step=step.id, principal=request.principal.name, error=error
            )
            raise ApplicationError(
                f"the target of step {step.id} did not take the new deadline ({error}); "
                f"the lease still ends at {before}",
                type=ErrorType.REFUSED,
            ) from None

    @extend.validator
    def _validate_extend(self, request: ExtendRequest) -> None:
        self._refuse_if(
            self._other_incident(request.incident_id)
            or gates.extension_refusal(self._steps.get(request.step_id), request)
        )

    @workflow.update(name=IncidentUpdate.RELEASE)
    async def release(self, request: ReleaseRequest) -> IncidentView:
        await self._admit(request, "release", None)
        if self._release is not None:  # another release got in while this one was checked
            self._refuse_if("this incident is already being released")
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
        self._refuse_if(self._other_incident(request.incident_id))
        if self._release is not None:
            raise ApplicationError(
                "this incident is already being released", type=ErrorType.REFUSED
            )

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
            self._publish()
            # A timeout means an approval deadline, a lease or a drift check is due.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(self._has_work, timeout=self._next_timer())
            if self._needs_decision:
                self._needs_decision = False
                await self._decide()
            self._expire_gates()
            await self._expire_leases()
            if self._release is not None and not self._released:
                await self._do_release(self._release)
            elif self._release is None:
                await self._drift.check_due(list(self._steps.values()))
            ready = [
                s
                for s in self._steps.values()
                if s.state in (StepState.PLANNED, StepState.APPROVED)
            ]
            if ready:
                await asyncio.gather(*(self._x.execute(s) for s in ready))
            if self._x.export_due():
                self._x.start_export()
            self._publish()
            if self._released:
                await self._hand_over_released()
                return self.state()
            if self._should_continue_as_new():
                # Unexported entries travel in the carry; the next run exports them.
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._history and self._visible:  # the next run is the list's row
                    workflow.upsert_search_attributes([STATUS.value_set(CONTINUED)])
                self._continue(self._carry(), status=self._status().value)

    def _decide_versions(self) -> None:
        """Versioning decided once, at the start of each run: a patch checked deep inside
        the loop can meet its marker at a different point of a replay than it was made."""
        self._previews = workflow.patched(PREVIEW_PATCH)
        self._x.guarded = workflow.patched(GUARD_PATCH)
        self._visible = workflow.patched(VISIBILITY_PATCH)
        self._renews = workflow.patched(RENEW_PATCH)
        self._drift.enabled = workflow.patched(DRIFT_PATCH)
        self._is_bounded()
        self._history = workflow.patched(HISTORY_PATCH)
        self._grants.enabled = workflow.patched(GRANTS_PATCH)

    async def _hand_over_released(self) -> None:
        """After a release: findings that came during it open the entity's next incident
        (in the same audit chain); otherwise the incident rests, readable and listed.
        Runs from before incidents kept their history just end."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._x.flush_audit()
        if self._after_release.items:
            self._continue(self._next_incident(), status=IncidentStatus.OPEN.value)
        if self._history:
            self._continue(self._carry(idle=True), status=IDLE)

    async def _rest(self) -> None:
        """A released incident, kept: its state still answers, and the release run is its
        row in the list (this run hides). The entity's next finding opens the next
        incident, numbered and linked to this one."""
        if self._visible:
            workflow.upsert_search_attributes([STATUS.value_set(IDLE)])

        def wakes() -> bool:
            return bool(self._after_release.items) or self._x.export_due() or self._full()

        while not (self._after_release.items or self._full()):
            await workflow.wait_condition(wakes)
            if self._x.export_due():
                self._x.start_export()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._x.flush_audit()
        if self._after_release.items:
            self._continue(self._next_incident(), status=IncidentStatus.OPEN.value)
        self._continue(self._carry(idle=True), status=IDLE)

    def _continue(self, carry: IncidentCarry, *, status: str) -> NoReturn:
        """Continue as new. The next run starts with the list's values already set (the
        given status), so no row doubles or goes missing while it starts."""
        if not (self._history and self._visible):
            workflow.continue_as_new(self._params(carry))
        shown = visible(
            status=IncidentStatus.OPEN,  # replaced by `status` below
            entity=self._entity,
            findings=carry.findings,
            received=carry.findings_received,
            decision=carry.decision,
            steps=carry.steps,
            incident_id=_incident_id(self._id, carry.sequence),
        )
        workflow.continue_as_new(
            self._params(carry), search_attributes=shown.attributes(status), memo=shown.memo()
        )

    def _full(self) -> bool:
        return workflow.info().get_current_history_length() > self._max_history

    def _has_work(self) -> bool:
        return (
            self._needs_decision
            or self._drift.recheck
            or (self._release is not None and not self._released)
            or any(s.state in (StepState.PLANNED, StepState.APPROVED) for s in self._steps.values())
            or self._should_continue_as_new()
            or self._x.export_due()
            or self._unpublished()
        )

    def _next_timer(self) -> timedelta | None:
        deadlines = [
            _parse(s.approval_deadline)
            for s in self._steps.values()
            if s.state is StepState.AWAITING_APPROVAL and s.approval_deadline
        ] + [
            _parse(s.lease_expires_at)
            for s in self._steps.values()
            if s.state in gates.HOLDING and s.lease_expires_at and s.reversible
        ]
        deadlines += self._drift.deadlines(self._steps.values())
        if not deadlines:
            return None
        return max(min(deadlines) - workflow.now(), timedelta(milliseconds=1))

    async def _decide(self) -> None:
        request = DecideRequest(incident_id=self._id, findings=self._kept.items)
        decision = await workflow.execute_local_activity(
            Activity.DECIDE,
            request,
            result_type=Decision,
            start_to_close_timeout=DECIDE_TIMEOUT,
        )
        self._decision = decision
        self._decisions.append(decision.decision_id)
        if self._bounded:  # every decision is in the audit; the view shows the newest
            del self._decisions[:-MAX_KEPT_IDS]
        self._x.record(
            "decision",
            verdict=decision.verdict.value,
            reasons=decision.reasons,
            policy_version=decision.policy_version,
            decision_id=decision.decision_id,
            input_digest=decision.input_digest,
            steps=[s.id for s in decision.steps],
        )
        now = workflow.now()
        # Plan merge by step id: a step already known keeps its state, approvals and receipt.
        waiting: list[StepView] = []
        for planned in decision.steps:
            if planned.id in self._steps:
                continue
            gate = planned.approval
            waits = gate.required > 0
            step = StepView(
                id=planned.id,
                adapter=planned.adapter,
                action=planned.action,
                target=planned.target,
                args=planned.args,
                reversible=planned.reversible,
                automatic=not waits,
                required_approvals=gate.required,
                approval_roles=gate.roles,
                must_include_roles=gate.must_include_roles,
                on_timeout=gate.on_timeout.value,
                approval_deadline=(now + timedelta(seconds=gate.timeout_s)).isoformat()
                if waits
                else None,
                lease_s=planned.lease_s or (DEFAULT_LEASE_S if planned.reversible else None),
                guard=planned.guard.essential,
                drift=planned.drift,
                state=StepState.AWAITING_APPROVAL if waits else StepState.PLANNED,
            )
            self._steps[step.id] = step
            self._x.record(
                "step.planned",
                step=step.id,
                awaiting_approval=waits,
                required_approvals=gate.required,
                reversible=planned.reversible,
            )
            if waits:
                waiting.append(step)
        # Approvers see what a step would change before they decide: a dry-run plan of
        # each step that waits for them (the plan that counts is made again at apply).
        if waiting and self._previews:
            await asyncio.gather(*(self._x.preview(step) for step in waiting))

    def _expire_gates(self) -> None:
        now = workflow.now()
        for step in self._steps.values():
            if step.state is not StepState.AWAITING_APPROVAL or step.approval_deadline is None:
                continue
            if _parse(step.approval_deadline) > now:
                continue
            step.approval_deadline = None
            outcome = OnTimeout(step.on_timeout)
            self._x.record("approval.timeout", step=step.id, on_timeout=outcome.value)
            if outcome is OnTimeout.DENY:
                self._x.transition(step, StepState.EXPIRED)
            elif outcome is OnTimeout.APPROVE:
                self._x.transition(step, StepState.APPROVED, by="policy on_timeout")
            else:
                self._escalate(f"step {step.id}: nobody approved it in time")

    async def _expire_leases(self) -> None:
        now = workflow.now()
        due = [
            s
            for s in self._steps.values()
            if s.state in gates.HOLDING
            and s.reversible
            and s.lease_expires_at
            and _parse(s.lease_expires_at) <= now
        ]
        for step in due:
            self._x.record("lease.expired", step=step.id)
            await self._x.roll_back(step)

    async def _do_release(self, request: ReleaseRequest) -> None:
        """Saga: cancel open gates, then undo applied steps in reverse order of applying."""
        for step in self._steps.values():
            if step.state in (StepState.PLANNED, StepState.AWAITING_APPROVAL, StepState.APPROVED):
                step.denial = self._record_of(request)
                step.approval_deadline = None
                self._x.transition(step, StepState.DENIED, reason="incident released")
        holding = sorted(
            (s for s in self._steps.values() if s.state in gates.HOLDING),
            key=lambda s: s.applied_seq or 0,
            reverse=True,
        )
        for step in holding:
            if step.reversible:
                await self._x.roll_back(step)
            else:
                self._x.record("release.irreversible", step=step.id)
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
            findings=self._kept.items,
            received=self._received,
            decision=self._decision,
            steps=list(self._steps.values()),
            incident_id=self._incident_id if self._history else "",
        )

    def _unpublished(self) -> bool:
        return self._visible and self._visibility() != self._published

    def _publish(self) -> None:
        """Keep the list's search attributes and memo current (only what changed)."""
        if not self._visible:
            return
        current = self._visibility()
        if current == self._published:
            return
        workflow.upsert_search_attributes(current.updates())
        workflow.upsert_memo(current.memo())
        self._published = current

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return not self._released and (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self._max_history
        )

    def _params(self, carry: IncidentCarry) -> IncidentParams:
        """The next run's input: the same incident and settings, with this carry."""
        return IncidentParams(
            incident_id=self._id,
            entity=self._entity,
            carry=carry,
            max_history_events=self._max_history,
            drift_check_s=self._drift.interval_s,
        )

    def _carry(self, *, idle: bool = False) -> IncidentCarry:
        return IncidentCarry(
            findings=self._kept.items,
            findings_received=self._received,
            seen=list(self._seen),
            duplicates=self._duplicates,
            decision=self._decision,
            decisions=self._decisions,
            steps=list(self._steps.values()),
            escalations=self._escalations,
            audit_tail=self._x.audit_tail,
            audit_total=self._x.audit_total,
            exported_seq=self._x.exported_seq,
            picture=list(self._picture),
            release_requested=self._release,
            run=self._run,
            sequence=self._sequence,
            earlier=self._earlier,
            idle=idle,
            used_grants=list(self._grants.used),
        )

    def _next_incident(self) -> IncidentCarry:
        bounded = bool(self._bounded)
        self._picture = {}
        for finding in self._after_release.items:
            self._remember(finding, bounded=bounded)
        return IncidentCarry(
            findings=self._after_release.items,
            findings_received=len(self._after_release.items),
            seen=list(self._seen),
            duplicates=0,
            decision=None,
            decisions=[],
            steps=[],
            escalations=[],
            audit_tail=[],
            audit_total=self._x.audit_total,
            exported_seq=self._x.exported_seq,
            picture=list(self._picture),
            run=self._run,
            sequence=self._sequence + 1,
            earlier=[*self._earlier, self._incident_id][-MAX_EARLIER:],
            fresh=True,
            used_grants=list(self._grants.used),
        )

    def _record_of(self, request: ApproveRequest | DenyRequest | ReleaseRequest) -> ApprovalRecord:
        return ApprovalRecord(
            principal=request.principal.name,
            principal_id=request.principal.id,
            roles=request.principal.roles,
            reason=request.reason,
            at=workflow.now().isoformat(),
            decision_id=request.authz_decision_id,
        )

    def _escalate(self, reason: str) -> None:
        """The incident needs a human: it shows as failed until someone acts."""
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
        if incident_id is None or incident_id == self._incident_id:
            return None
        return (
            f"{incident_id} is not this entity's current incident ({self._incident_id}); "
            "an earlier incident takes no actions"
        )

    @staticmethod
    def _refuse_if(reason: str | None) -> None:
        if reason is not None:
            # The update is rejected before it reaches history; the API answers 409.
            raise ApplicationError(reason, type=ErrorType.REFUSED, non_retryable=True)
