"""`bulkhead api`, `bulkhead worker`, `bulkhead lab up`: the parts on their own."""

from __future__ import annotations

import asyncio
import os
import sys

import prometheus_client

from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.config import Settings, webhook_secret
from orchestrator.lab.city import CityLab
from orchestrator.policy.factory import build_engine, policy_parts
from orchestrator.runtime import api_server, run_until_stopped, stop_event_on_signals
from orchestrator.temporal.attributes import ensure_search_attributes
from orchestrator.temporal.city import TemporalCity
from orchestrator.temporal.client import connect
from orchestrator.temporal.recheck import recheck_held
from orchestrator.wiring.inventory import Inventory
from orchestrator.wiring.worker import build_activities, build_worker, require_endpoints


async def _api(settings: Settings) -> int:
    secret = webhook_secret(settings)
    if secret is None:
        print("error: set BULKHEAD_WEBHOOK_SECRET (whsec_<base64 key>)", file=sys.stderr)
        return 2
    stop = stop_event_on_signals()
    # Lazy: the API comes up even while Temporal is down and answers 503 until it is back.
    client = await connect(settings, lazy=True)
    engine = build_engine(settings)
    context = build_context(settings, client, engine, secret)
    server = api_server(create_app(context), settings.api_host, settings.api_port)
    print(
        f"Bulkhead API on {settings.api_url} (Temporal {settings.temporal_address})",
        file=sys.stderr,
        flush=True,
    )
    reason = await run_until_stopped(
        stop, {"api": server.serve(), **policy_parts(engine, settings)}
    )
    return 0 if reason == "signal" else 1


async def _worker(settings: Settings) -> int:
    # Before Temporal: an inventory that would drive the lab outside it is refused at once
    # (MissingEndpointError names each record; the CLI prints it and exits 1).
    require_endpoints(settings, Inventory.load(settings.policy_dir))
    stop = stop_event_on_signals()
    client = await connect(settings)
    await ensure_search_attributes(client, settings.temporal_namespace)
    city = TemporalCity(client, settings)
    await city.ensure()
    activities = build_activities(settings, city)
    worker = build_worker(client, settings, activities)
    # Signals are durable: the incidents check their targets as soon as a worker polls.
    await recheck_held(client, settings, "worker started")
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
    reason = await run_until_stopped(
        stop, {"worker": worker.run(), **policy_parts(activities.engine, settings)}
    )
    return 0 if reason == "signal" else 1


async def _lab(settings: Settings) -> int:
    stop = stop_event_on_signals()
    lab = CityLab(settings)
    await lab.start()
    print("\n".join(["Lab:", *lab.banner_lines(), "Ctrl-C stops"]), file=sys.stderr, flush=True)
    await _recheck_after_lab_start(settings)
    try:
        await stop.wait()
    finally:
        await lab.stop()
    return 0


async def _recheck_after_lab_start(settings: Settings) -> None:
    """A restarted lab comes back in its normal modes: incidents that hold a lab target
    verify it now. Without Temporal there is nothing to ask (the lab runs on its own)."""
    try:
        client = await asyncio.wait_for(connect(settings), timeout=5)
    except (OSError, RuntimeError, TimeoutError) as exc:
        print(f"(no Temporal at {settings.temporal_address}: {exc}; no recheck)", file=sys.stderr)
        return
    asked = await recheck_held(client, settings, "lab started")
    print(f"asked {asked} incident(s) holding a step to verify it again", file=sys.stderr)


def api(settings: Settings) -> int:
    os.umask(0o077)  # what the API writes (console sessions, tokens) is private
    return asyncio.run(_api(settings))


def worker(settings: Settings) -> int:
    os.umask(0o077)  # the audit trail and the lab's secrets are private
    return asyncio.run(_worker(settings))


def lab_up(settings: Settings) -> int:
    return asyncio.run(_lab(settings))
