"""Hot reload: poll the policy directory's content hash; serve a change only once it passes.

Hashing and reading files run in a worker thread. Compiling and checking the candidate
(the gate of orchestrator.policy.check, tens of ms, only when something changed) run on
the event loop's own thread on purpose: regorus engines panic when used, or even
garbage-collected, on a thread other than their creator's, so every engine stays on
the one thread that serves decisions. A rejected tree is remembered by hash, so it is
not re-checked every second, and a later edit is looked at afresh.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import structlog

from orchestrator.policy.bundle import PolicyBundle, PolicyLoadError, tree_hash
from orchestrator.policy.check import check_bundle
from orchestrator.policy.embedded import EmbeddedEngine

log = structlog.get_logger(__name__)

Outcome = Literal["unchanged", "loaded", "rejected"]
DEFAULT_INTERVAL_S = 1.0
MAX_REASONS = 5


@dataclass(frozen=True)
class _Refused:
    reason: str
    tree_hash: str


def _candidate(bundle: PolicyBundle) -> PolicyBundle | _Refused:
    """Check a candidate read from disk; call on the serving thread (it builds engines).

    Without the adapter stages (inventory, steps): a running worker carries steps out with
    the adapters it built from the inventory it started with, so the adapters a candidate's
    inventory would build prove nothing here. `bulkhead policy check` runs them, in CI."""
    report = check_bundle(bundle, adapters=False)
    if not report.ok:
        return _Refused("; ".join(report.problems()[:MAX_REASONS]), bundle.tree_hash)
    return bundle


async def reload_once(engine: EmbeddedEngine) -> Outcome:
    """Look once; load the directory if it changed and passes the gate."""
    if engine.policy_dir is None:
        return "unchanged"
    current = await asyncio.to_thread(tree_hash, engine.policy_dir)
    rejected = engine.last_rejection
    if current == engine.bundle.tree_hash or (rejected and current == rejected.tree_hash):
        return "unchanged"
    try:
        bundle = await asyncio.to_thread(PolicyBundle.read, engine.policy_dir)
    except PolicyLoadError as exc:
        engine.reject(str(exc), current)
        return "rejected"
    outcome = _candidate(bundle)
    if isinstance(outcome, _Refused):
        engine.reject(outcome.reason, outcome.tree_hash)
        return "rejected"
    try:
        engine.install(outcome)
    except PolicyLoadError as exc:  # passed the gate in its thread, so this is unexpected
        engine.reject(str(exc), outcome.tree_hash)
        return "rejected"
    return "loaded"


async def watch(engine: EmbeddedEngine, *, interval_s: float = DEFAULT_INTERVAL_S) -> None:
    """Run until cancelled: a part of `bulkhead up` / `api` / `worker` next to the others."""
    log.info("policy.watching", directory=str(engine.policy_dir), interval_s=interval_s)
    while True:
        await asyncio.sleep(interval_s)
        try:
            await reload_once(engine)
        except Exception:
            # A watcher that dies would stop reloads silently: log and keep watching.
            log.exception("policy.watch_failed")
