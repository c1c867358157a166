"""Embedded Rego engine (regorus): load the policy directory once, evaluate many times.

A checked bundle is swapped as a whole (orchestrator.policy.reload checks a candidate
first), so every evaluation sees one version from start to end. Compiled engines are kept
per thread (orchestrator.policy.compiled): regorus engines must not cross threads.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from contracts.decision import Decision
from orchestrator.policy.base import (
    AUTHZ_ENTRYPOINT,
    AUTHZ_REASONS,
    ENTRYPOINT,
    NOTIFY_ENTRYPOINT,
    Authorization,
    AuthorizationRequest,
    escalation,
    tags_from,
)
from orchestrator.policy.bundle import PolicyBundle, PolicyLoadError
from orchestrator.policy.compiled import compile_bundle, engine_for
from orchestrator.policy.errors import rego_error
from orchestrator.policy.explain import Explanation
from orchestrator.policy.explain import explain as explain_decision
from orchestrator.policy.models import ContainmentInput, data_problems
from orchestrator.policy.results import (
    InvalidRequestError,
    authorization_document,
    authorization_from,
    canonical_json,
    decision_from_json,
    digest_of,
    refusal,
)
from orchestrator.policy.status import PolicyStatus, Rejection
from orchestrator.wiring.inventory import Inventory

log = structlog.get_logger(__name__)

__all__ = ["EmbeddedEngine", "PolicyBundle", "PolicyLoadError", "compile_bundle", "engine_for"]


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

    def watcher(self, *, interval_s: float) -> Awaitable[None] | None:
        """Hot reload of the policy directory; none for an engine built from a bundle."""
        if self.policy_dir is None:
            return None
        # Imported here: reload checks a candidate with orchestrator.policy.check, which
        # builds EmbeddedEngines, so a module-level import would be circular.
        from orchestrator.policy.reload import watch  # noqa: PLC0415

        return watch(self, interval_s=interval_s)

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

    def decide(self, policy_input: ContainmentInput) -> Decision:
        loaded = self._loaded  # one version for the whole call, even across a reload
        decision_id = str(uuid.uuid4())
        version = loaded.bundle.version
        try:
            canonical = canonical_json(policy_input.document())
        except (TypeError, ValueError) as exc:  # a non-JSON value where any is allowed
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
        return decision_from_json(
            raw, policy_version=version, decision_id=decision_id, digest=digest
        )

    def authorize(self, request: AuthorizationRequest) -> Authorization:
        loaded = self._loaded
        decision_id = str(uuid.uuid4())
        version = loaded.bundle.version
        try:
            document = json.dumps(authorization_document(request))
        except InvalidRequestError as exc:
            return refusal(str(exc), policy_version=version, decision_id=decision_id)
        try:
            engine = engine_for(loaded.bundle)
            engine.set_input_json(document)
            allow = json.loads(engine.eval_rule_as_json(AUTHZ_ENTRYPOINT))
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

    def notify(self, event: dict[str, Any]) -> list[str] | None:
        try:
            engine = engine_for(self._loaded.bundle)
            engine.set_input_json(json.dumps({"event": event}, default=str))
            return tags_from(json.loads(engine.eval_rule_as_json(NOTIFY_ENTRYPOINT)))
        except (RuntimeError, PolicyLoadError, ValueError) as exc:
            log.warning("notify.policy_error", error=rego_error(exc))
            return None

    def explain(self, policy_input: ContainmentInput) -> Explanation:
        """On a private engine with coverage on, never the serving one (explain.py)."""
        return explain_decision(self._loaded.bundle, policy_input)

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
