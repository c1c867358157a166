"""Build the long-lived parts (engine, inventory, adapters, worker) from settings."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import py_compile
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from orchestrator.activities import ContainmentActivities
from orchestrator.audit.checkpointer import Checkpointer
from orchestrator.audit.export import forwarders
from orchestrator.audit.keys import audit_key
from orchestrator.audit.metrics import WorkerMetrics
from orchestrator.audit.sink import AuditSink, ForwardingAuditSink, JsonlAuditSink
from orchestrator.config import Settings
from orchestrator.guard import ProbeGuard
from orchestrator.policy.factory import build_engine
from orchestrator.responders.grants import GrantVerifier, approval_key
from orchestrator.temporal.city import CityState
from orchestrator.wiring.adapters import build_adapters
from orchestrator.wiring.inventory import Inventory
from workflows import city, incident
from workflows.city import CityWorkflow
from workflows.incident import IncidentWorkflow

AUDIT_FILE = "audit.jsonl"


def workflow_task_slots(settings: Settings) -> int:
    """Workflow tasks one worker runs at once: the setting, else two per core (at least 4).

    temporalio's default is 100, each on a thread of its own. On a 2-core machine in an
    alert storm those threads fought over the GIL, and a task taken at once carried one
    signal; with a few slots the tasks that wait gather the signals that arrive meanwhile,
    and the storm went from 0.35-0.45x to 0.52-0.58x of bare signal-with-start
    (bench/storm.py, docs/PERFORMANCE.md). A task waiting on a local activity (apply,
    verify, a guard probe) holds its slot: raise this where adapters are slow."""
    if settings.max_concurrent_workflow_tasks is not None:
        return settings.max_concurrent_workflow_tasks
    return max(4, 2 * (os.cpu_count() or 1))


def cache_workflow_bytecode() -> None:
    """Write the workflow modules' .pyc where it is missing or stale (sandboxed workers).

    temporalio's sandbox imports a workflow's module afresh for every run it starts (the
    modules it imports are passed through). Without a cached .pyc (PYTHONDONTWRITEBYTECODE
    set, as on the machine this was measured on, or a checkout never imported) each import
    compiled the module from source again: 12% of the worker's CPU while it opened incidents
    (docs/PERFORMANCE.md, session 7). A read-only install is left as it is: pip compiled it.
    """
    for module in (incident, city):
        source = Path(str(module.__file__))
        cached = Path(importlib.util.cache_from_source(str(source)))
        if cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime:
            continue
        with contextlib.suppress(OSError, py_compile.PyCompileError):
            py_compile.compile(str(source), cfile=str(cached), doraise=True)


def _runner(settings: Settings) -> WorkflowRunner:
    """Sandboxed where the setting asks (the test suite), else not (see workflow_sandbox)."""
    if settings.workflow_sandbox:
        cache_workflow_bytecode()
        return SandboxedWorkflowRunner()
    return UnsandboxedWorkflowRunner()


def build_audit_sink(settings: Settings, metrics: WorkerMetrics | None = None) -> AuditSink:
    """The JSONL trail in the state dir, sealed with the audit key (generated into the state
    dir when unset), forwarded to a webhook / PostgreSQL if configured, and checkpointed
    beside the file and to those anchors."""
    observe = metrics.observe_audit if metrics is not None else None
    key = audit_key(settings, create=True)
    assert key is not None  # noqa: S101 - create=True always yields one
    primary = JsonlAuditSink(settings.state_dir / AUDIT_FILE, on_sealed=observe, key=key)
    secret = settings.audit_webhook_secret
    dsn = settings.audit_postgres_dsn
    extra = forwarders(
        webhook_url=settings.audit_webhook_url,
        webhook_secret=secret.get_secret_value() if secret else None,
        postgres_dsn=dsn.get_secret_value() if dsn else None,
    )
    interval_s = settings.audit_checkpoint_interval_s
    checkpoints = Checkpointer(primary, key=key, anchors=extra, interval_s=interval_s)
    return ForwardingAuditSink(primary, extra, checkpoints)


def build_activities(settings: Settings, city: CityState | None = None) -> ContainmentActivities:
    inventory = Inventory.load(settings.policy_dir)
    engine = build_engine(settings)  # embedded or OPA, per settings.policy_engine
    metrics = WorkerMetrics()
    return ContainmentActivities(
        engine,
        inventory,
        build_adapters(settings, inventory),
        city=city,
        audit_sink=build_audit_sink(settings, metrics),
        guard=ProbeGuard.from_inventory(settings, inventory),
        metrics=metrics,
    )


def build_worker(
    client: Client,
    settings: Settings,
    activities: ContainmentActivities,
    *,
    max_cached_workflows: int = 1000,
) -> Worker:
    """`max_cached_workflows=0` replays every workflow task from history: tests use it to
    prove the workflow code is deterministic on every path, not only on committed ones."""
    verifier = GrantVerifier(approval_key(settings))
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[IncidentWorkflow, CityWorkflow],
        activities=[*activities.all(), verifier.verify_grant],
        max_cached_workflows=max_cached_workflows,
        # None keeps temporalio's default.
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=workflow_task_slots(settings),
        workflow_runner=_runner(settings),
    )
