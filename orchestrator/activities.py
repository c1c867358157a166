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
from datetime import datetime
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
    AuditBatch,
    Contained,
    ContainRequest,
    GuardReport,
    GuardRequest,
    PlanRecording,
    RecordedPlan,
    RenewLeaseRequest,
)
from contracts.names import Activity, ErrorType, IncidentSignal
from orchestrator.audit.metrics import WorkerMetrics
from orchestrator.audit.sink import AuditSink
from orchestrator.guard import ServiceGuard, Unguarded
from orchestrator.policy.base import PolicyEngine, escalation
from orchestrator.policy.input import containment_input
from orchestrator.temporal.city import CityState, StaticCity
from orchestrator.wiring.inventory import Inventory

log = structlog.get_logger(__name__)

# Plans kept for a retry of the CONTAIN activity (see contain_step): more than the steps
# one worker contains at once, so a retry never finds its plan pushed out.
KEPT_PLANS = 4096


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
        # (run id, plan token) -> the plan a CONTAIN call recorded before it applied.
        self._planned: OrderedDict[tuple[str, str], Plan] = OrderedDict()

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
        await run.signal(IncidentSignal.PLAN_RECORDED, RecordedPlan(token=request.token, plan=plan))
        return plan

    @activity.defn(name=Activity.CONTAIN)
    async def contain_step(self, request: ContainRequest) -> Contained:
        """Plan (recorded in the run's history, as `plan_step_recorded` does), apply and
        verify in one local activity: each local activity costs the workflow task a hand-off
        to the worker and back, about 3 ms on two cores (bench/time_to_contain.py).

        A retry (apply failed or timed out, perhaps after changing the target) applies
        against the plan its first attempt recorded, never one read from the changed
        target: retries of a local activity run in this worker, which keeps the plan until
        the call returns. A worker that dies instead leaves the plan in the run's history,
        and the workflow passes it in (`request.plan`). A verify that raises after apply
        landed is returned, not retried: the workflow must record the receipt of a change
        that landed, and verifies again on its own."""
        info = activity.info()
        kept = (info.workflow_run_id or "", request.token)
        plan = request.plan or self._planned.get(kept)
        if plan is None:
            recording = PlanRecording(command=request.command, token=request.token)
            plan = await self.plan_step_recorded(recording)
            self._planned[kept] = plan
            while len(self._planned) > KEPT_PLANS:
                self._planned.popitem(last=False)
        receipt = await self.apply_step(request.command)
        try:
            verification = await self.verify_step(receipt)
        except Exception as exc:  # noqa: BLE001 - reported to the workflow, which verifies again
            self._planned.pop(kept, None)
            return Contained(plan=plan, receipt=receipt, verify_error=str(exc))
        self._planned.pop(kept, None)
        return Contained(plan=plan, receipt=receipt, verification=verification)

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
        ]


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
