"""`bulkhead up`: dev server, worker, API and lab, supervised as one command."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import structlog
import uvloop

from orchestrator.cli.lab import Lab, load_lab
from orchestrator.cli.serve import api_part, run_parts, worker_part
from orchestrator.config import WEBHOOK_SECRET_FILE, Settings, secure_state_dir, webhook_secret
from orchestrator.metrics import Metrics
from orchestrator.policy.factory import policy_parts
from orchestrator.responders.operator import ensure_operator, operator_token_path
from orchestrator.runtime import stop_event_on_signals
from orchestrator.temporal.client import connect
from orchestrator.temporal.devserver import DevServer, port_open

log = structlog.get_logger(__name__)
NO_LAB = "off (--no-lab): lab adapters fail closed, network steps run in plan-only mode"


@contextlib.contextmanager
def state_dir_lock(state_dir: Path) -> Iterator[None]:
    """Two supervisors on one SQLite file would corrupt it; the second one refuses."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "bulkhead.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another `bulkhead up` is using {state_dir}; stop it or pick --state-dir"
            ) from None
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def banner(settings: Settings, dev: DevServer, *, lab: Lab | None) -> str:
    lab_lines = lab.banner_lines() if lab else [f"  Lab           {NO_LAB}"]
    return "\n".join(
        [
            "Bulkhead is up.",
            f"  API           {settings.api_url}   (readiness: {settings.api_url}/readyz)",
            f"  Temporal UI   {dev.ui_url}",
            f"  Temporal      {dev.address}  namespace {settings.temporal_namespace}",
            *lab_lines,
            f"  State dir     {settings.state_dir.resolve()}",
            f"  Webhook secret {secret_source(settings)}",
            f"  Read access   {operator_token_path(settings).resolve()} (viewer; the CLI uses it)",
            "Try:  bulkhead send generic examples/findings/traffic-controller-compromise.json",
            "Stop: Ctrl-C",
        ]
    )


async def run_up(settings: Settings, *, with_lab: bool) -> int:
    """The dev server, the lab, then the worker and the API as `bulkhead worker` and
    `bulkhead api` start them (orchestrator/cli/serve.py), in this one process."""
    host, _, port_text = settings.temporal_address.rpartition(":")
    dev = DevServer(
        settings.state_dir,
        host=host or "127.0.0.1",
        port=int(port_text),
        namespace=settings.temporal_namespace,
    )
    lab = load_lab(settings) if with_lab else None  # before anything starts: a clear error
    if port_open(settings.api_host, settings.api_port):
        print(f"error: API port {settings.api_port} is in use; pass --api-port", file=sys.stderr)
        return 2
    secret = webhook_secret(settings, create=True)
    assert secret is not None  # noqa: S101 - create=True always yields one
    ensure_operator(settings)
    stop = stop_event_on_signals()
    print(
        f"Starting Temporal dev server on {dev.address} (state in {settings.state_dir}) ...",
        file=sys.stderr,
        flush=True,
    )
    await dev.start()
    try:
        if lab is not None:
            print("Starting the lab ...", file=sys.stderr, flush=True)
            await lab.start()
        client = await connect(settings)
        # A restart of `bulkhead up` restarts the lab too: held steps are verified now.
        activities, worker = await worker_part(settings, client, started_by="bulkhead up started")
        # One process: /metrics serves the worker's measurements next to the API's own.
        metrics = Metrics(also=[activities.metrics.registry])
        api = api_part(settings, client, activities.engine, secret, metrics=metrics)
        print(banner(settings, dev, lab=lab), flush=True)
        # Hot reload of policies/: a broken edit is rejected, the old version serves.
        reload = policy_parts(activities.engine, settings)
        return await run_parts(stop, {**worker, **api, "temporal": dev.wait(), **reload})
    finally:
        try:
            if lab is not None:
                await lab.stop()
        finally:
            await dev.stop()  # never leave the dev server behind
            print("Stopped.", file=sys.stderr, flush=True)


def secret_source(settings: Settings) -> str:
    """Where the webhook secret comes from; the secret itself is never printed."""
    if settings.webhook_secret is not None:
        return "from BULKHEAD_WEBHOOK_SECRET"
    return f"in {(settings.state_dir / WEBHOOK_SECRET_FILE).resolve()}"


def up(settings: Settings, *, with_lab: bool) -> int:
    # Everything `up` and its children (the dev server's SQLite, the lab) create in the
    # state dir is private: the audit trail, tokens and the database are nobody else's.
    os.umask(0o077)
    if with_lab:
        # The lab runs here, so inventory records without an endpoint mean its simulators.
        settings = settings.model_copy(update={"lab": True})
    secure_state_dir(settings.state_dir)
    with state_dir_lock(settings.state_dir):
        # uvloop, as `bulkhead api` and `bulkhead worker` run (orchestrator/cli/serve.py).
        return uvloop.run(run_up(settings, with_lab=with_lab))
