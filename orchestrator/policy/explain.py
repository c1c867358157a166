"""Why a decision came out as it did: per-step guardrail notes and the policy lines that ran.

Evaluated on a private engine with coverage on, never on the serving one, so explaining
costs the dry run only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from orchestrator.policy.base import ENTRYPOINT
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.compiled import compile_bundle
from orchestrator.policy.models import ContainmentInput
from orchestrator.policy.testing import line_ranges

EXPLAIN_RULE = "data.bulkhead.containment.explain"


@dataclass(frozen=True)
class Explanation:
    notes: dict[str, list[str]] = field(default_factory=dict)
    lines: dict[str, str] = field(default_factory=dict)  # module → covered line ranges
    prints: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.notes, "lines_evaluated": self.lines, "prints": self.prints}


def explain(bundle: PolicyBundle, policy_input: ContainmentInput) -> Explanation:
    engine = compile_bundle(bundle)
    engine.set_enable_coverage(True)
    engine.set_gather_prints(True)
    engine.set_input_json(json.dumps(policy_input.document()))
    try:
        notes = json.loads(engine.eval_rule_as_json(EXPLAIN_RULE))
    except RuntimeError:
        notes = {}  # a policy without an explain rule still has its lines explained
    # Only the decision's own evaluation counts as "lines that ran".
    engine.clear_coverage_data()
    engine.take_prints()
    engine.eval_rule_as_json(ENTRYPOINT)
    report = json.loads(engine.get_coverage_report_as_json())
    lines = {
        entry["path"]: line_ranges(entry.get("covered", []))
        for entry in report.get("files", [])
        if entry.get("covered")
    }
    return Explanation(
        notes=notes if isinstance(notes, dict) else {},
        lines=lines,
        prints=[str(p) for p in engine.take_prints()],
    )
