"""What the worker measures, for Prometheus: findings, decisions by verdict, step
transitions by state, drift caught on held steps, approval wait, time-to-contain, adapter latency.

Counted from the sealed audit trail as it is exported (each entry once, whatever the
retries), and from the adapter calls the activities make. The workflow itself stays
free of side effects. `bulkhead up` serves these at the API's /metrics; a standalone
`bulkhead worker` serves them on `worker_metrics_port`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram

from contracts.incident import AuditEntry, StepState

# Containment in well under a second is the promise; approvals take minutes.
CONTAIN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
APPROVAL_BUCKETS = (1.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)
ADAPTER_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
STEP_KINDS = "step."
STATES = frozenset(state.value for state in StepState)
# Incidents and waiting steps remembered for the durations; the oldest are forgotten.
MAX_REMEMBERED = 100_000
KeyT = TypeVar("KeyT")


def _remember(memory: OrderedDict[KeyT, datetime], key: KeyT, at: datetime) -> None:
    memory.setdefault(key, at)
    while len(memory) > MAX_REMEMBERED:
        memory.popitem(last=False)


def _at(entry: AuditEntry) -> datetime:
    return datetime.fromisoformat(entry.at)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.findings = Counter(
            "bulkhead_findings", "Findings taken into incidents.", registry=self.registry
        )
        self.decisions = Counter(
            "bulkhead_decisions",
            "Policy decisions by verdict.",
            ["verdict"],
            registry=self.registry,
        )
        self.steps = Counter(
            "bulkhead_step_transitions",
            "Step transitions by the state entered.",
            ["state"],
            registry=self.registry,
        )
        self.guard_trips = Counter(
            "bulkhead_guard_trips",
            "Steps undone because an essential service went down after them.",
            registry=self.registry,
        )
        self.drift = Counter(
            "bulkhead_drift",
            "Held steps whose target was found out of its contained state, by adapter and "
            "what was done (reapply or escalate).",
            ["adapter", "outcome"],
            registry=self.registry,
        )
        self.time_to_contain = Histogram(
            "bulkhead_time_to_contain_seconds",
            "From an incident's first finding to each step verified (workflow time; steps "
            "that waited for approval included).",
            buckets=CONTAIN_BUCKETS,
            registry=self.registry,
        )
        self.approval_wait = Histogram(
            "bulkhead_approval_wait_seconds",
            "From a step planned awaiting approval to approved.",
            buckets=APPROVAL_BUCKETS,
            registry=self.registry,
        )
        self.adapter_latency = Histogram(
            "bulkhead_adapter_call_seconds",
            "Adapter calls by adapter, operation and outcome.",
            ["adapter", "operation", "outcome"],
            buckets=ADAPTER_BUCKETS,
            registry=self.registry,
        )
        # Per incident: when its first finding arrived and when each waiting step began.
        self._first_finding: OrderedDict[str, datetime] = OrderedDict()
        self._waiting_since: OrderedDict[tuple[str, str], datetime] = OrderedDict()

    def observe_audit(self, fresh: Sequence[AuditEntry]) -> None:
        """Entries sealed for the first time (a retried export is not counted twice)."""
        for entry in fresh:
            self._observe(entry)

    def _observe(self, entry: AuditEntry) -> None:
        kind, detail = entry.kind, entry.detail
        step = (entry.incident_id, str(detail.get("step", "")))
        if kind == "finding.received":
            self.findings.inc()
            _remember(self._first_finding, entry.incident_id, _at(entry))
        elif kind == "decision":
            self.decisions.labels(verdict=str(detail.get("verdict", "unknown"))).inc()
        elif kind == "guard.tripped":
            self.guard_trips.inc()
        elif kind == "step.drift":
            adapter, outcome = str(detail.get("adapter", "unknown")), str(detail.get("outcome"))
            self.drift.labels(adapter=adapter, outcome=outcome).inc()
        elif kind == "step.planned" and detail.get("awaiting_approval"):
            _remember(self._waiting_since, step, _at(entry))
        elif kind.startswith(STEP_KINDS) and kind.removeprefix(STEP_KINDS) in STATES:
            self._step(kind.removeprefix(STEP_KINDS), step, entry)

    def _step(self, state: str, step: tuple[str, str], entry: AuditEntry) -> None:
        self.steps.labels(state=state).inc()
        if state == "approved" and step in self._waiting_since:
            waited = _at(entry) - self._waiting_since.pop(step)
            self.approval_wait.observe(waited.total_seconds())
        elif state == "verified" and not entry.detail.get("reapplied"):
            # A re-apply after drift is not a new containment: time-to-contain counts once.
            first = self._first_finding.get(entry.incident_id)
            if first is not None:
                self.time_to_contain.observe((_at(entry) - first).total_seconds())

    def observe_adapter(self, adapter: str, operation: str, outcome: str, seconds: float) -> None:
        self.adapter_latency.labels(adapter=adapter, operation=operation, outcome=outcome).observe(
            seconds
        )
