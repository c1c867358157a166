"""Policy dry runs in worker processes, so a flood of them cannot starve the API.

A dry run parses, validates and evaluates up to a megabyte of caller-supplied JSON. On
the event loop, 24 of them at once froze the API (webhooks and /healthz included) for
seconds; on threads they still fight the loop for the GIL (a /healthz p99 of ~350 ms in
bench/front_door.py). In their own processes they only share the CPUs. Each worker
compiles the embedded engine once per policy version it is handed; the answer comes back
already serialized, so the event loop does not re-encode a megabyte either. An engine
that evaluates elsewhere (OPA: an HTTP call; no bundle here) runs on a thread instead.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from orchestrator.api.body import loads
from orchestrator.api.problems import RETRY_AFTER_S, Problem
from orchestrator.policy.base import PolicyEngine
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.dryrun import DryRunError, policy_input_from
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.wiring.inventory import Inventory

T = TypeVar("T")
QUEUED_PER_WORKER = 8  # dry runs that may wait for a worker before callers get 503
# One compiled engine per version in each worker process (hot reloads bring new ones).
_ENGINES: dict[str, EmbeddedEngine] = {}
Answer = tuple[int, bytes, dict[str, Any]]  # status, JSON body or problem detail, extras


class DryRuns:
    """Worker processes for the embedded engine, threads otherwise; a bounded queue."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        # spawn, not fork: the API process holds threads (Temporal's client, the loop).
        context = multiprocessing.get_context("spawn")
        self._processes: Executor = ProcessPoolExecutor(workers, mp_context=context)
        self._threads: Executor = ThreadPoolExecutor(workers, thread_name_prefix="dry-run")
        self._admitted = 0

    async def call(self, work: Callable[[], T], *, in_process: bool = True) -> T:
        """Run `work` on a worker (a picklable call when `in_process`); 503 when full."""
        if self._admitted >= self.workers * (1 + QUEUED_PER_WORKER):
            raise Problem(
                503,
                "too many policy dry runs in progress; retry shortly",
                slug="busy",
                headers={"Retry-After": RETRY_AFTER_S},
            )
        self._admitted += 1
        executor = self._processes if in_process else self._threads
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, work)
        finally:
            self._admitted -= 1

    async def evaluate(
        self, engine: PolicyEngine, policy_dir: Any, raw: bytes, *, explain: bool
    ) -> bytes:
        """The dry run's JSON answer; a Problem for a bad request."""
        bundle = engine.bundle
        if bundle is not None:
            work = partial(dry_run_in_worker, bundle, raw, explain=explain)
            status, body, extra = await self.call(work)
        else:

            def on_a_thread() -> Answer:  # the inventory file is read off the event loop too
                inventory = engine.inventory()
                if inventory is None:
                    inventory = Inventory.load(policy_dir)
                return answer(engine, inventory, raw, explain=explain)

            status, body, extra = await self.call(on_a_thread, in_process=False)
        if status != 200:
            raise Problem(status, body.decode(), **extra)
        return body


_SHARED: dict[int, DryRuns] = {}


def shared_dry_runs(workers: int) -> DryRuns:
    """One pool per process and size: worker processes are costly to start (~1 s)."""
    if workers not in _SHARED:
        _SHARED[workers] = DryRuns(workers)
    return _SHARED[workers]


def dry_run_in_worker(bundle: PolicyBundle, raw: bytes, *, explain: bool) -> Answer:
    """Runs in a worker process: this version's engine, compiled here once."""
    engine = _ENGINES.get(bundle.version)
    if engine is None:
        _ENGINES.clear()  # the served version moved on; keep one
        engine = _ENGINES[bundle.version] = EmbeddedEngine.from_bundle(bundle)
    return answer(engine, engine.inventory(), raw, explain=explain)


def answer(engine: PolicyEngine, inventory: Inventory, raw: bytes, *, explain: bool) -> Answer:
    """The whole dry run of one body, as plain values (a Problem does not pickle)."""
    try:
        body = dry_run(engine, inventory, loads(raw), explain=explain)
    except Problem as problem:
        return problem.status, problem.detail.encode(), {"slug": problem.slug, **problem.extra}
    return 200, json.dumps(body, separators=(",", ":")).encode(), {}


def dry_run(
    engine: PolicyEngine, inventory: Inventory, document: Any, *, explain: bool
) -> dict[str, Any]:
    """The decision for a dry-run document, with the input it was made from."""
    try:
        policy_input = policy_input_from(document, inventory)
    except DryRunError as exc:
        raise Problem(422, str(exc), slug="invalid-request", errors=exc.errors) from None
    except (ValueError, TypeError, OverflowError) as exc:
        # A wrongly typed field the shapes above do not name (active_containments: "x").
        raise Problem(422, f"not a valid dry-run request: {exc}", slug="invalid-request") from None
    decision = engine.decide(policy_input)
    body: dict[str, Any] = {
        "decision": decision.model_dump(mode="json"),
        "input": policy_input.document(),
        "dry_run": True,
    }
    # An engine that cannot explain (OPA) answers without it, as it always has.
    if explain and (explanation := engine.explain(policy_input)) is not None:
        body["explain"] = explanation.as_dict()
    return body
