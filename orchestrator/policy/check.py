"""The gate a policy version must pass: `bulkhead policy check`, CI, and every hot reload.

It compiles, validates the data documents against their models, checks every `cases/`
example gives its expected decision, and runs the Rego tests. A hot reload that fails
any of these is rejected and the previous version keeps serving.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import ValidationError

from orchestrator.policy.bundle import PolicyBundle, PolicyLoadError
from orchestrator.policy.diff import diff_decisions
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.models import PolicyCase, data_problems
from orchestrator.policy.testing import TestRun, run_tests


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class CheckReport:
    checks: list[Check] = field(default_factory=list)
    tests: TestRun | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def problems(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]


def case_problems(bundle: PolicyBundle, engine: EmbeddedEngine) -> list[str]:
    """Every example of cases/ must validate and give exactly its expected decision."""
    problems: list[str] = []
    for name, text in bundle.cases.items():
        try:
            raw = json.loads(text)
            case = PolicyCase.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            problems.append(f"cases/{name}: invalid case: {_first_line(exc)}")
            continue
        # The input as written, not as re-dumped by pydantic: absent and null differ in Rego.
        decision = engine.decide(raw["input"])
        changes = diff_decisions(
            case.expected.verdict, case.expected.steps, decision.verdict, decision.steps
        )
        problems += [f"cases/{name}: {c.describe()} (expected → actual)" for c in changes]
        problems += [
            f"cases/{name}: missing reason {reason!r}"
            for reason in case.expected.reasons_include
            if reason not in decision.reasons
        ]
    return problems


def check_bundle(bundle: PolicyBundle, *, rego_tests: bool = True) -> CheckReport:
    checks: list[Check] = []
    try:
        engine = EmbeddedEngine.from_bundle(bundle)
    except PolicyLoadError as exc:
        return CheckReport([Check("compile", ok=False, detail=str(exc))])
    checks.append(Check("compile", ok=True, detail=f"{len(bundle.modules)} module(s)"))
    problems = data_problems(bundle.data)
    checks.append(Check("data", ok=not problems, detail="; ".join(problems) or _documents(bundle)))
    problems = case_problems(bundle, engine)
    checks.append(
        Check("cases", ok=not problems, detail="; ".join(problems) or f"{len(bundle.cases)} ok")
    )
    run: TestRun | None = None
    if rego_tests and bundle.tests:
        try:
            run = run_tests(bundle)
        except PolicyLoadError as exc:
            checks.append(Check("rego tests", ok=False, detail=f"do not compile: {exc}"))
        else:
            bad = [r for r in run.results if r.status in ("fail", "error")]
            detail = (
                "failing: " + ", ".join(f"{r.path} ({r.status})" for r in bad)
                if bad
                else f"{run.count('pass')} passed"
            )
            checks.append(Check("rego tests", ok=not bad, detail=detail))
    return CheckReport(checks, run)


def _documents(bundle: PolicyBundle) -> str:
    return ", ".join(f"data.{name}" for name in sorted(bundle.data)) or "no data documents"


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
