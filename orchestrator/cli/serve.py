"""The parts Bulkhead runs, and `bulkhead api` / `bulkhead worker`, which run one each.

`bulkhead up` (orchestrator/cli/up.py) runs the same two parts in one process, beside a
Temporal dev server and the lab: one way to start each part, whichever command runs it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable

import prometheus_client
import uvloop
from temporalio.client import Client

from orchestrator.activities import ContainmentActivities
from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.config import Settings, webhook_secret
from orchestrator.events.setup import event_sender
from orchestrator.metrics import Metrics
from orchestrator.notify.setup import notifier
from orchestrator.policy.base import PolicyEngine
from orchestrator.policy.factory import build_engine, policy_parts
from orchestrator.runtime import (
    api_server,
    freeze_heap,
    run_until_stopped,
    stop_event_on_signals,
)
from orchestrator.temporal.attributes import ensure_search_attributes
from orchestrator.temporal.city import TemporalCity
from orchestrator.temporal.client import connect
from orchestrator.temporal.recheck import recheck_held
from orchestrator.wiring.adapters import require_endpoints
from orchestrator.wiring.inventory import Inventory
from orchestrator.wiring.worker import AUDIT_FILE, build_activities, build_worker

Parts = dict[str, Awaitable[object]]


async def worker_part(
    settings: Settings, client: Client, *, started_by: str
) -> tuple[ContainmentActivities, Parts]:
    """The worker on the task queue, once the namespace and the city record are ready;
    incidents holding a step are asked to verify it (signals are durable: they act as
    soon as this worker polls)."""
    await ensure_search_attributes(client, settings.temporal_namespace)
    city = TemporalCity(client, settings)
    await city.ensure()
    activities = build_activities(settings, city)
    worker = build_worker(client, settings, activities)
    parts: Parts = {"worker": worker.run()}
    # OCSF Remediation events to the SIEM (#19): a task beside the worker, never inside it.
    audit_path = settings.state_dir / AUDIT_FILE
    registry = activities.metrics.registry
    sender = event_sender(settings, client, audit_path=audit_path, registry=registry)
    if sender is not None:
        parts["events"] = sender.run()
    # Notifications routed by the notify policy (#19): the same kind of task, its own cursor.
    pager = notifier(settings, client, activities.engine, audit_path=audit_path, registry=registry)
    if pager is not None:
        parts["notify"] = pager.run()
    await recheck_held(client, settings, started_by)
    return activities, parts


def api_part(
    settings: Settings,
    client: Client,
    engine: PolicyEngine,
    secret: str,
    *,
    metrics: Metrics | None = None,
) -> Parts:
    context = build_context(settings, client, engine, secret)
    server = api_server(create_app(context, metrics), settings.api_host, settings.api_port)
    return {"api": server.serve()}


async def run_parts(stop: asyncio.Event, parts: Parts) -> int:
    freeze_heap()  # everything is built by now
    reason = await run_until_stopped(stop, parts)
    print(f"Stopping ({reason}) ...", file=sys.stderr, flush=True)
    return 0 if reason == "signal" else 1


async def _api(settings: Settings) -> int:
    secret = webhook_secret(settings)
    if secret is None:
        print("error: set BULKHEAD_WEBHOOK_SECRET (whsec_<base64 key>)", file=sys.stderr)
        return 2
    stop = stop_event_on_signals()
    # Lazy: the API comes up even while Temporal is down and answers 503 until it is back.
    client = await connect(settings, lazy=True)
    engine = build_engine(settings)
    parts = api_part(settings, client, engine, secret)
    print(
        f"Bulkhead API on {settings.api_url} (Temporal {settings.temporal_address})",
        file=sys.stderr,
        flush=True,
    )
    return await run_parts(stop, {**parts, **policy_parts(engine, settings)})


async def _worker(settings: Settings) -> int:
    # Before Temporal: an inventory that would drive the lab outside it is refused at once
    # (MissingEndpointError names each record; the CLI prints it and exits 1).
    require_endpoints(settings, Inventory.load(settings.policy_dir))
    stop = stop_event_on_signals()
    client = await connect(settings)
    activities, parts = await worker_part(settings, client, started_by="worker started")
    if settings.worker_metrics_port is not None:
        prometheus_client.start_http_server(
            settings.worker_metrics_port,
            addr=settings.api_host,
            registry=activities.metrics.registry,
        )
    print(
        f"Bulkhead worker on task queue {settings.task_queue!r} "
        f"(Temporal {settings.temporal_address})",
        file=sys.stderr,
        flush=True,
    )
    return await run_parts(stop, {**parts, **policy_parts(activities.engine, settings)})


def api(settings: Settings) -> int:
    os.umask(0o077)  # what the API writes (console sessions, tokens) is private
    # uvloop: the event loop in C; an alert storm is event-loop work in the API and worker.
    return uvloop.run(_api(settings))


def worker(settings: Settings) -> int:
    os.umask(0o077)  # the audit trail and the lab's secrets are private
    return uvloop.run(_worker(settings))
