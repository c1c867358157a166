"""Embedded Rego engine (regorus): load the policy directory once, evaluate many times."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regorus
import structlog
from pydantic import ValidationError

from orchestrator.policy.base import ENTRYPOINT, escalation
from orchestrator.policy.errors import rego_error
from workflows.model import Decision

log = structlog.get_logger(__name__)
# eval_rule_as_json renders an undefined rule as this JSON string rather than failing.
REGORUS_UNDEFINED = "<undefined>"


class PolicyLoadError(Exception):
    """The policy directory does not compile or its data does not parse."""


@dataclass(frozen=True)
class PolicyBundle:
    """Rego modules (tests excluded) and data documents, with their content hash."""

    modules: dict[str, str]
    data: dict[str, Any]
    version: str

    @classmethod
    def read(cls, policy_dir: Path) -> PolicyBundle:
        if not policy_dir.is_dir():
            raise PolicyLoadError(f"policy directory {policy_dir} does not exist")
        digest = hashlib.sha256()
        modules: dict[str, str] = {}
        for path in sorted(policy_dir.rglob("*.rego")):
            if path.name.endswith("_test.rego"):
                continue
            relative = path.relative_to(policy_dir).as_posix()
            text = path.read_text()
            modules[relative] = text
            digest.update(f"{relative}\0{text}\0".encode())
        data: dict[str, Any] = {}
        for path in sorted((policy_dir / "data").glob("*.json")):
            text = path.read_text()
            try:
                data[path.stem] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise PolicyLoadError(f"{path}: {exc}") from exc
            digest.update(f"data/{path.name}\0{text}\0".encode())
        if not modules:
            raise PolicyLoadError(f"no .rego files under {policy_dir}")
        return cls(modules=modules, data=data, version="sha256:" + digest.hexdigest()[:16])


def _digest(policy_input: dict[str, Any]) -> str:
    canonical = json.dumps(policy_input, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class EmbeddedEngine:
    def __init__(self, policy_dir: Path) -> None:
        self.policy_dir = policy_dir
        self.bundle = PolicyBundle.read(policy_dir)
        self._engine = self._compile(self.bundle)

    @staticmethod
    def _compile(bundle: PolicyBundle) -> regorus.Engine:
        engine = regorus.Engine()
        for name, text in bundle.modules.items():
            try:
                engine.add_policy(name, text)
            except RuntimeError as exc:
                raise PolicyLoadError(rego_error(exc)) from exc
        engine.add_data_json(json.dumps(bundle.data))
        return engine

    @property
    def version(self) -> str:
        return self.bundle.version

    def decide(self, policy_input: dict[str, Any]) -> Decision:
        decision_id = str(uuid.uuid4())
        digest = _digest(policy_input)
        try:
            self._engine.set_input_json(json.dumps(policy_input))
            raw = json.loads(self._engine.eval_rule_as_json(ENTRYPOINT))
        except RuntimeError as exc:
            log.warning("policy.error", error=rego_error(exc), decision_id=decision_id)
            return escalation(
                f"policy error: {rego_error(exc)}",
                policy_version=self.version,
                decision_id=decision_id,
                digest=digest,
            )
        if not isinstance(raw, dict):
            what = (
                "is undefined"
                if raw in (None, REGORUS_UNDEFINED)
                else f"is a {type(raw).__name__}, not an object"
            )
            return escalation(
                f"{ENTRYPOINT} {what}",
                policy_version=self.version,
                decision_id=decision_id,
                digest=digest,
            )
        try:
            return Decision.model_validate(
                {
                    **raw,
                    "policy_version": self.version,
                    "decision_id": decision_id,
                    "input_digest": digest,
                }
            )
        except ValidationError as exc:
            log.warning("policy.invalid_decision", error=str(exc), decision_id=decision_id)
            return escalation(
                f"policy returned an invalid decision: {exc.error_count()} error(s), first: "
                f"{exc.errors()[0]['msg']} at {'/'.join(map(str, exc.errors()[0]['loc']))}",
                policy_version=self.version,
                decision_id=decision_id,
                digest=digest,
            )
