"""Activities: the only place where the workflow touches policies and real targets.

One class built with its dependencies (engine, inventory, adapters); tests build it with
fakes. Adapter errors become ApplicationErrors whose type tells Temporal whether to retry.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.base import Adapter, PermanentAdapterError, RenewsLease, TransientAdapterError
from contracts.adapter import Plan, Receipt, StepCommand, Verification
from contracts.city import CityView
from contracts.decision import DecideRequest, Decision
from contracts.incident import (
    ActingOn,
    AuditBatch,
    Contained,
    ContainRequest,
    GuardLook,
    GuardReport,
    GuardRequest,
    PlanRecording,
    RecordedPlan,
    RenewLeaseRequest,
)
from contracts.names import APPLY_FAILED, Activity, ErrorType, IncidentSignal
from orchestrator.audit.metrics import WorkerMetrics
from orchestrator.audit.sink import AuditSink
from orchestrator.guard import ServiceGuard, Unguarded
from orchestrator.policy.base import PolicyEngine, escalation
from orchestrator.policy.input import containment_input
from orchestrator.temporal.city import CityState, StaticCity
from orchestrator.wiring.inventory import Inventory

log = structlog.get_logger(__name__)

# First attempts' plans and probes kept for a retry of the CONTAIN activity (see
# contain_step): more than the steps one worker contains at once, so a retry never
# finds its own pushed out.
KEPT_FIRST_LOOKS = 4096
# A CONTAIN call's verify, as long as a verify in a call of its own may take.
VERIFY_TIMEOUT = timedelta(seconds=10)


class ContainmentActivities:
    def __init__(
        self,
        engine: PolicyEngine,
        inventory: Inventory,
        adapters: Mapping[str, Adapter],
        *,
        city: CityState | None = None,
        audit_sink: AuditSink | None = None,
        guard: ServiceGuard | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._engine = engine
        self._inventory = inventory
        self._adapters = dict(adapters)
        self._city = city or StaticCity()
        self._audit_sink = audit_sink
        self._guard = guard or Unguarded()
        self.metrics = metrics or WorkerMetrics()
        # (run id, plan token) -> what a CONTAIN call's first attempt saw before it applied.
        self._first_looks: OrderedDict[tuple[str, str], _FirstLook] = OrderedDict()

    @property
    def engine(self) -> PolicyEngine:
        return self._engine

    def _current_inventory(self) -> Inventory:
        """The inventory of the policy version being served: a hot reload may change it,
        and the enrichment must match the data the policy decides with. An engine that
        does not hold one (OPA) decides with the directory's, loaded at start."""
        served = self._engine.inventory()
        return self._inventory if served is None else served

    def _adapter(self, name: str) -> Adapter:
        adapter = self._adapters.get(name)
        if adapter is None:
            raise ApplicationError(
                f"no adapter named {name!r} is configured (have: {sorted(self._adapters)})",
                type=ErrorType.PERMANENT_ADAPTER,
                non_retryable=True,
            )
        return adapter

    @activity.defn(name=Activity.DECIDE)
    async def decide(self, request: DecideRequest) -> Decision:
        try:
            city = await self._city.snapshot()
        except Exception as exc:  # noqa: BLE001 - any failure to read the city fails closed
            log.warning("city.unreadable", incident_id=request.incident_id, error=str(exc))
            # Unknown kill-switch state: behave as paused, so every step waits for a human.
            city = CityView(paused=True, reason="city record unreadable")
        inventory = self._current_inventory()
        try:
            policy_input = containment_input(
                request,
                inventory,
                automation_paused=city.paused,
                active_containments=city.active_containments,
            )
        except ValidationError as exc:
            # An inventory record the input model refuses (OPA's data is not checked here):
            # escalate, as the engine does for any input it cannot evaluate; raising would
            # have Temporal retry the activity for ever.
            return self._unreadable_input(request, exc)
        zones = sorted({a.zone for a in policy_input.assets if a.zone})
        decision = self._engine.decide(policy_input).model_copy(
            update={"zones": zones, "essential": inventory.any_essential(zones)}
        )
        log.info(
            "policy.decided",
            incident_id=request.incident_id,
            verdict=decision.verdict.value,
            steps=len(decision.steps),
            policy_version=decision.policy_version,
        )
        return decision

    def _unreadable_input(self, request: DecideRequest, exc: ValidationError) -> Decision:
        first = exc.errors()[0]
        reason = f"policy input is invalid: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        log.warning("policy.invalid_input", incident_id=request.incident_id, error=reason)
        return escalation(
            reason, policy_version=self._engine.version, decision_id=str(uuid.uuid4()), digest=""
        )

    @activity.defn(name=Activity.PLAN)
    async def plan_step(self, command: StepCommand) -> Plan:
        with self._calling(command.adapter, command.incident_id, command.step_id, "plan"):
            return await self._adapter(command.adapter).plan(command)

    @activity.defn(name=Activity.PLAN_RECORDED)
    async def plan_step_recorded(self, request: PlanRecording) -> Plan:
        """`plan_step`, run as a local activity, whose plan is in the workflow's history
        before it returns: a signal to its own run, which Temporal persists on receipt.

        A local activity's result is durable only when its workflow task completes. If the
        worker dies after apply changed the target and before that, the task runs again;
        the signal is then in the history it replays, and the workflow restores what the
        target held before, not the changed state a new plan would read."""
        info = activity.info()
        if info.workflow_id is None:
            raise ApplicationError(
                "plan_step_recorded records a plan in its workflow: it runs only in one",
                type=ErrorType.PERMANENT_ADAPTER,
                non_retryable=True,
            )
        plan = await self.plan_step(request.command)
        run = activity.client().get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)
        recorded = RecordedPlan(
            token=request.token, plan=plan, before=request.before, command=request.command
        )
        await run.signal(IncidentSignal.PLAN_RECORDED, recorded)
        return plan

    @activity.defn(name=Activity.CONTAIN)
    async def contain_step(self, request: ContainRequest) -> Contained:
        """Probe the guard, plan (recorded in the run's history, as `plan_step_recorded`
        does), apply and verify in one local activity: each local activity costs the
        workflow task a hand-off to the worker and back, about 3 ms on two cores
        (bench/time_to_contain.py).

        A retry (apply failed or timed out, perhaps after changing the target) applies
        against what its first attempt saw: the plan it recorded and the services' health
        before any apply, never a plan or a probe read after the change. Retries of a local
        activity run in this worker, which keeps those until the call returns. A worker
        that dies instead leaves both in the run's history (the plan's signal carries the
        look), and the workflow passes them in (`request.plan`, `request.before`). A
        verify that raises after apply landed is returned, not retried: the workflow must
        record the receipt of a change that landed, and verifies again on its own."""
        info = activity.info()
        kept = (info.workflow_run_id or "", request.token)
        first = self._first_looks.get(kept)
        if first is None:
            if request.plan is not None and request.before is not None:
                # A task run again after a crash: the first attempt's look, from history.
                guard, guard_error = request.before.report, request.before.error
            else:
                guard, guard_error = await self._look_before(request.guard)
            look = GuardLook(report=guard, error=guard_error) if request.guard else None
            plan = request.plan or await self.plan_step_recorded(
                PlanRecording(command=request.command, token=request.token, before=look)
            )
            first = self._first_looks[kept] = _FirstLook(plan, guard, guard_error)
            while len(self._first_looks) > KEPT_FIRST_LOOKS:
                self._first_looks.popitem(last=False)
        try:
            receipt = await self.apply_step(request.command)
        except ApplicationError as exc:  # the change may have landed: the workflow audits it
            raise ApplicationError(
                exc.message, APPLY_FAILED, type=exc.type, non_retryable=exc.non_retryable
            ) from exc
        except Exception as exc:
            raise ApplicationError(str(exc), APPLY_FAILED, type=type(exc).__name__) from exc
        seen = {"plan": first.plan, "guard": first.guard, "guard_error": first.guard_error}
        try:
            # Bounded here: a verify cut off by the call's own limit would lose the receipt.
            verification = await asyncio.wait_for(
                self.verify_step(receipt), VERIFY_TIMEOUT.total_seconds()
            )
        except Exception as exc:  # noqa: BLE001 - reported to the workflow, which verifies again
            error = str(exc) or type(exc).__name__
            log.warning("step.verify_raised", key=receipt.key, error=error)
            done = Contained(**seen, receipt=receipt, verify_error=error)
        else:
            done = Contained(**seen, receipt=receipt, verification=verification)
        self._first_looks.pop(kept, None)
        return done

    async def _look_before(
        self, request: GuardRequest | None
    ) -> tuple[GuardReport | None, str | None]:
        """The guard's probe before a change, or why it could not probe."""
        if request is None:
            return None, None
        try:
            return await self.probe_guard(request), None
        except Exception as exc:  # noqa: BLE001 - the workflow audits it: guard.unavailable
            return None, str(exc)

    @activity.defn(name=Activity.APPLY)
    async def apply_step(self, command: StepCommand) -> Receipt:
        with self._calling(command.adapter, command.incident_id, command.step_id, "apply"):
            receipt = await self._adapter(command.adapter).apply(
                command, key=command.idempotency_key
            )
        log.info(
            "step.applied",
            incident_id=command.incident_id,
            step=command.step_id,
            detail=receipt.detail,
        )
        return receipt

    @activity.defn(name=Activity.VERIFY)
    async def verify_step(self, receipt: Receipt) -> Verification:
        incident_id, _, step_id = receipt.key.partition(":")
        with self._calling(receipt.adapter, incident_id, step_id, "verify"):
            return await self._adapter(receipt.adapter).verify(receipt)

    @activity.defn(name=Activity.ROLLBACK)
    async def rollback_step(self, receipt: Receipt) -> Receipt:
        incident_id, _, step_id = receipt.key.partition(":")
        with self._calling(receipt.adapter, incident_id, step_id, "rollback"):
            return await self._adapter(receipt.adapter).rollback(receipt)

    @activity.defn(name=Activity.RENEW_LEASE)
    async def renew_lease(self, request: RenewLeaseRequest) -> Receipt:
        """The step's deadline moved on the target too (a no-op where it has none)."""
        receipt = request.receipt
        adapter = self._adapter(receipt.adapter)
        if not isinstance(adapter, RenewsLease):
            return receipt
        incident_id, _, step_id = receipt.key.partition(":")
        with self._calling(receipt.adapter, incident_id, step_id, "renew_lease"):
            return await adapter.renew_lease(
                receipt, expires_at=datetime.fromisoformat(request.expires_at)
            )

    @activity.defn(name=Activity.PROBE_GUARD)
    async def probe_guard(self, request: GuardRequest) -> GuardReport:
        settle = request.moment == "after" and not request.settled
        report = await self._guard.check(request.services, settle=settle)
        if request.moment == "before":  # the workflow waits this long before "after"
            report = report.model_copy(update={"settle_s": self._guard.settle_s})
        unhealthy = [name for name, h in report.services.items() if h.healthy is False]
        log.info(
            "guard.probed",
            incident_id=request.incident_id,
            step=request.step_id,
            moment=request.moment,
            unhealthy=unhealthy,
        )
        return report

    @activity.defn(name=Activity.EXPORT_AUDIT)
    async def export_audit(self, batch: AuditBatch) -> None:
        if self._audit_sink is not None:
            # File I/O with fsync: keep it off the event loop that runs workflows.
            await asyncio.to_thread(self._audit_sink.write, batch.entries)

    @activity.defn(name=Activity.RECORD_READS)
    async def record_reads(self, request: ActingOn) -> None:
        """Nothing to do: awaiting a regular activity is what ends the workflow's task
        (see workflows/changing.py, `record_reads`). Logged, so the pause has a trace."""
        log.info(
            "workflow.reads_recorded",
            incident_id=request.incident_id,
            step=request.step_id,
            reason=request.reason,
        )

    def _calling(
        self, adapter: str, incident_id: str, step_id: str, operation: str
    ) -> _adapter_errors:
        return _adapter_errors(incident_id, step_id, operation, self.metrics, adapter)

    def all(self) -> list[Any]:
        return [
            self.decide,
            self.plan_step,
            self.plan_step_recorded,
            self.contain_step,
            self.apply_step,
            self.verify_step,
            self.rollback_step,
            self.renew_lease,
            self.probe_guard,
            self.export_audit,
            self.record_reads,
        ]


@dataclass(frozen=True)
class _FirstLook:
    """What a CONTAIN call's first attempt saw before it applied (see contain_step)."""

    plan: Plan
    guard: GuardReport | None
    guard_error: str | None


class _adapter_errors:  # noqa: N801 - used as a lowercase context manager, like contextlib's
    """Translate adapter errors into Temporal's retryable / non-retryable failures."""

    def __init__(
        self,
        incident_id: str,
        step_id: str,
        operation: str,
        metrics: WorkerMetrics,
        adapter: str,
    ) -> None:
        self._log = log.bind(incident_id=incident_id, step=step_id, operation=operation)
        self._metrics = metrics
        self._labels = (adapter, operation)
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        outcome = "ok" if exc is None else type(exc).__name__
        elapsed = time.perf_counter() - self._started
        self._metrics.observe_adapter(*self._labels, outcome=outcome, seconds=elapsed)
        if isinstance(exc, PermanentAdapterError):
            self._log.warning("adapter.permanent_error", error=str(exc))
            raise ApplicationError(str(exc), type=ErrorType.PERMANENT_ADAPTER, non_retryable=True)
        if isinstance(exc, TransientAdapterError):
            self._log.info("adapter.transient_error", error=str(exc))
            raise ApplicationError(str(exc), type=ErrorType.TRANSIENT_ADAPTER)
