"""Embedded Rego engine (regorus): load the policy directory once, evaluate many times.

A checked bundle is swapped as a whole (orchestrator.policy.reload checks a candidate
first), so every evaluation sees one version from start to end.

A regorus Engine is "unsendable": using it, or even dropping it, on a thread other than
the one that created it panics. So compiled engines never hang off an EmbeddedEngine
(whose last reference may die on any thread, e.g. in an executor's work item): each
thread keeps its own small cache of compiled engines by policy version, in a module-level
thread-local that lives as long as the thread, and evicts on that same thread. Compiling
costs about 3 ms, once per thread and version; in `bulkhead up` one event-loop thread
runs the API and the worker.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import regorus
import structlog

from contracts.decision import Decision
from orchestrator.policy.base import (
    AUTHZ_ENTRYPOINT,
    AUTHZ_REASONS,
    ENTRYPOINT,
    Authorization,
    escalation,
)
from orchestrator.policy.bundle import PolicyBundle, PolicyLoadError
from orchestrator.policy.errors import rego_error
from orchestrator.policy.models import data_problems
from orchestrator.policy.results import (
    authorization_from,
    canonical_json,
    decision_from,
    digest_of,
    refusal,
)
from orchestrator.policy.status import PolicyStatus, Rejection
from orchestrator.wiring.inventory import Inventory

log = structlog.get_logger(__name__)

__all__ = ["EmbeddedEngine", "PolicyBundle", "PolicyLoadError", "compile_bundle", "engine_for"]


def compile_bundle(bundle: PolicyBundle, *, with_tests: bool = False) -> regorus.Engine:
    """A regorus engine holding the bundle's modules (and tests) and data."""
    engine = regorus.Engine()
    modules = {**bundle.modules, **bundle.tests} if with_tests else bundle.modules
    problem = _load(engine, modules, bundle.data)
    if problem is not None:
        # Raise only once the engine is gone: a traceback keeps its frames' locals alive,
        # and an engine collected later on another thread panics instead of dropping.
        del engine
        raise PolicyLoadError(problem)
    return engine


def _load(engine: regorus.Engine, modules: dict[str, str], data: dict[str, Any]) -> str | None:
    """Load into `engine`; the first error as text (no exception outlives this frame)."""
    for name, text in modules.items():
        try:
            engine.add_policy(name, text)
        except RuntimeError as exc:
            return rego_error(exc)
    try:
        engine.add_data_json(json.dumps(data))
    except RuntimeError as exc:
        return f"data: {rego_error(exc)}"
    return None


# Per thread: policy version → compiled engine, least recently used first.
_PER_THREAD = threading.local()
ENGINES_PER_THREAD = 8


def engine_for(bundle: PolicyBundle) -> regorus.Engine:
    """This thread's compiled engine for `bundle` (compiled on first use)."""
    cache: OrderedDict[str, regorus.Engine] | None = getattr(_PER_THREAD, "engines", None)
    if cache is None:
        cache = _PER_THREAD.engines = OrderedDict()
    engine = cache.get(bundle.version)
    if engine is not None:
        cache.move_to_end(bundle.version)
        return engine
    engine = compile_bundle(bundle)
    cache[bundle.version] = engine
    while len(cache) > ENGINES_PER_THREAD:
        cache.popitem(last=False)  # dropped here, on the thread that compiled it
    return engine


@dataclass(frozen=True)
class _Loaded:
    bundle: PolicyBundle
    loaded_at: datetime


class EmbeddedEngine:
    name = "embedded"

    def __init__(
        self, policy_dir: Path | None = None, *, bundle: PolicyBundle | None = None
    ) -> None:
        if bundle is None:
            if policy_dir is None:
                raise TypeError("EmbeddedEngine needs a policy directory or a bundle")
            bundle = PolicyBundle.read(policy_dir)
        if problems := data_problems(bundle.data):
            # Invalid data would make the policy fall back silently; refuse to serve it.
            raise PolicyLoadError("; ".join(problems[:5]))
        self.policy_dir = policy_dir
        self._loaded = _Loaded(bundle, datetime.now(UTC))
        self._last_rejection: Rejection | None = None
        engine_for(bundle)  # compile errors surface here, not at the first decision

    @classmethod
    def from_bundle(cls, bundle: PolicyBundle) -> EmbeddedEngine:
        return cls(bundle=bundle)

    @property
    def version(self) -> str:
        return self._loaded.bundle.version

    @property
    def bundle(self) -> PolicyBundle:
        return self._loaded.bundle

    @property
    def last_rejection(self) -> Rejection | None:
        return self._last_rejection

    def inventory(self) -> Inventory:
        """The city inventory of the version being served (it moves with hot reloads)."""
        return Inventory(self._loaded.bundle.data.get("inventory", {}))

    def status(self) -> PolicyStatus:
        loaded = self._loaded
        return PolicyStatus(
            engine=self.name,
            version=loaded.bundle.version,
            source=str(self.policy_dir) if self.policy_dir else "(in memory)",
            loaded_at=loaded.loaded_at,
            last_rejection=self._last_rejection,
            reload=self.policy_dir is not None,
        )

    # --- evaluation ---------------------------------------------------------------------------

    def evaluate(self, rule: str, document: dict[str, Any]) -> Any:
        """The raw JSON value of `rule` for `document`; raises RuntimeError on Rego errors."""
        engine = engine_for(self._loaded.bundle)
        engine.set_input_json(json.dumps(document))
        return json.loads(engine.eval_rule_as_json(rule))

    def decide(self, policy_input: dict[str, Any]) -> Decision:
        loaded = self._loaded  # one version for the whole call, even across a reload
        decision_id = str(uuid.uuid4())
        version = loaded.bundle.version
        try:
            canonical = canonical_json(policy_input)
        except (TypeError, ValueError) as exc:
            return escalation(
                f"policy input is not JSON: {exc}",
                policy_version=version,
                decision_id=decision_id,
                digest="",
            )
        digest = digest_of(canonical)
        try:
            engine = engine_for(loaded.bundle)
            engine.set_input_json(canonical)
            raw = engine.eval_rule_as_json(ENTRYPOINT)
        except (RuntimeError, PolicyLoadError) as exc:
            log.warning("policy.error", error=rego_error(exc), decision_id=decision_id)
            return escalation(
                f"policy error: {rego_error(exc)}",
                policy_version=version,
                decision_id=decision_id,
                digest=digest,
            )
        return decision_from(
            json.loads(raw), policy_version=version, decision_id=decision_id, digest=digest
        )

    def authorize(self, request: dict[str, Any]) -> Authorization:
        loaded = self._loaded
        decision_id = str(uuid.uuid4())
        version = loaded.bundle.version
        try:
            document = json.dumps(request)
            engine = engine_for(loaded.bundle)
            engine.set_input_json(document)
            allow = json.loads(engine.eval_rule_as_json(AUTHZ_ENTRYPOINT))
        except (TypeError, ValueError) as exc:
            return refusal(
                f"request is not JSON: {exc}", policy_version=version, decision_id=decision_id
            )
        except (RuntimeError, PolicyLoadError) as exc:
            log.warning("authz.error", error=rego_error(exc), decision_id=decision_id)
            return refusal(
                f"approval policy error: {rego_error(exc)}",
                policy_version=version,
                decision_id=decision_id,
            )
        reasons: Any = []
        if allow is not True:
            try:
                reasons = json.loads(engine.eval_rule_as_json(AUTHZ_REASONS))
            except RuntimeError:
                reasons = []  # reasons explain a refusal; without them it is still a refusal
        return authorization_from(allow, reasons, policy_version=version, decision_id=decision_id)

    # --- hot reload (driven by orchestrator.policy.reload) -----------------------------------

    def install(self, bundle: PolicyBundle) -> None:
        """Serve a checked bundle from now on; calls in flight finish on the old one."""
        previous = self._loaded.bundle.version
        loaded = _Loaded(bundle, datetime.now(UTC))
        engine_for(bundle)  # compile on the calling (serving) thread before the swap
        self._loaded = loaded
        self._last_rejection = None
        log.info("policy.reloaded", version=bundle.version, previous=previous)

    def reject(self, reason: str, tree_hash: str) -> Rejection:
        rejection = Rejection(at=datetime.now(UTC), reason=reason, tree_hash=tree_hash)
        self._last_rejection = rejection
        log.error(
            "policy.reload_rejected",
            reason=reason,
            serving=self._loaded.bundle.version,
            tree_hash=tree_hash,
        )
        return rejection
