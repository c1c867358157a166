"""`bulkhead policy cases update`: after a reviewed policy change, regenerate each case's
expected decision from the policy as it now is, and show what that changes.

Only `expected` is rewritten: the verdict and the steps as the policy now gives them, and
the `reasons_include` the decision still gives (a reason it no longer gives is dropped,
and said so; new reasons are not added: which ones a case pins is a person's choice).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from contracts.decision import DecisionStep
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.diff import Change, diff_decisions
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.feasibility import steps_of
from orchestrator.policy.models import PolicyCase

# The fields every case step spells out; any other field only when it is not its default
# (fields added to the step model later, such as `drift`, stay out of untouched cases).
CASE_STEP_FIELDS = (
    "id",
    "adapter",
    "action",
    "target",
    "args",
    "approval",
    "lease_s",
    "reversible",
    "guard",
)
_DEFAULTS = DecisionStep(id="-", adapter="-", action="-", target={}).model_dump(mode="json")


class CaseUpdateError(ValueError):
    """A case that cannot be regenerated (invalid, or the policy fails on its input)."""


@dataclass(frozen=True)
class CaseUpdate:
    name: str
    changes: list[Change]  # the old expected decision → the policy's decision now
    dropped_reasons: list[str]
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"cases/{self.name} (expected)",
                tofile=f"cases/{self.name} (regenerated)",
            )
        )


def step_json(step: DecisionStep) -> dict[str, Any]:
    dumped = step.model_dump(mode="json")
    return {k: v for k, v in dumped.items() if k in CASE_STEP_FIELDS or v != _DEFAULTS.get(k)}


def _update(name: str, text: str, engine: EmbeddedEngine) -> CaseUpdate:
    try:
        raw = json.loads(text)
        case = PolicyCase.model_validate(raw)
    except (ValueError, ValidationError) as exc:
        raise CaseUpdateError(f"cases/{name}: invalid case, not updated: {exc}") from exc
    failure = steps_of(engine, case.input)
    if isinstance(failure, str):
        raise CaseUpdateError(f"cases/{name}: {failure}; not updated")
    decision = engine.decide(case.input)
    kept = [r for r in case.expected.reasons_include if r in decision.reasons]
    expected = {
        **raw["expected"],
        "verdict": decision.verdict.value,
        "steps": [step_json(s) for s in decision.steps],
        "reasons_include": kept,
    }
    after = json.dumps({**raw, "expected": expected}, indent=2, ensure_ascii=False) + "\n"
    changes = diff_decisions(
        case.expected.verdict, case.expected.steps, decision.verdict, decision.steps
    )
    dropped = [r for r in case.expected.reasons_include if r not in kept]
    return CaseUpdate(name, changes, dropped, text, after)


def case_updates(bundle: PolicyBundle) -> list[CaseUpdate]:
    """What regenerating every case would write; raises CaseUpdateError before any write."""
    engine = EmbeddedEngine.from_bundle(bundle)
    return [_update(name, text, engine) for name, text in bundle.cases.items()]
