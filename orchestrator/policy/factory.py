"""Which engine serves the policies, from settings; and the parts that keep it fresh."""

from __future__ import annotations

from collections.abc import Awaitable

from orchestrator.config import Settings
from orchestrator.policy.base import PolicyEngine
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.opa import OpaEngine


def build_engine(settings: Settings) -> PolicyEngine:
    if settings.policy_engine == "opa":
        token = settings.opa_token.get_secret_value() if settings.opa_token else None
        return OpaEngine(
            settings.opa_url,
            # OPA is expected to serve this same directory (PolicyBundle.export_for_opa).
            policy_version=PolicyBundle.read(settings.policy_dir).version,
            timeout_s=settings.opa_timeout_s,
            token=token,
        )
    return EmbeddedEngine(settings.policy_dir)


def policy_parts(engine: PolicyEngine, settings: Settings) -> dict[str, Awaitable[None]]:
    """Long-running parts for `run_until_stopped`: the hot-reload watcher, when it applies."""
    if settings.policy_reload_interval_s <= 0:
        return {}  # asked for no watcher: none is made (an unawaited one would warn)
    watcher = engine.watcher(interval_s=settings.policy_reload_interval_s)
    return {} if watcher is None else {"policy-reload": watcher}
