"""The gate a policy version must pass: `bulkhead policy check`, CI, and every hot reload.

Stages, in order: the Rego compiles; the data validates against its models; the data
keys the policies read exist and every data key is read (datakeys); every `cases/`
example gives its expected decision; the inventory fits the adapters' contracts
(inventory_contract); every step of every case and of the inventory sweep is one its
adapter would accept (feasibility); the Rego tests pass. A hot reload runs every stage
but the adapter ones (see reload._candidate); one that fails is rejected and the previous
version keeps serving.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from orchestrator.policy.bundle import PolicyBundle, PolicyLoadError
from orchestrator.policy.compiled import compile_bundle
from orchestrator.policy.datafiles import data_file_problems
from orchestrator.policy.datakeys import data_key_problems
from orchestrator.policy.diff import diff_decisions
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.jsonpos import key_lines
from orchestrator.policy.models import PolicyCase
from orchestrator.policy.problems import Problem
from orchestrator.policy.testing import TestRun, run_tests

STAGES = ("compile", "data", "data keys", "cases", "inventory", "steps", "rego tests")
_LOCATED = re.compile(r"^(?P<file>[^\s:]+\.rego):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    problems: tuple[Problem, ...] = ()
    skipped: bool = False
    # The failure on one line, for logs and GET /v1/policy's last rejection.
    log: str = ""

    @classmethod
    def of(cls, name: str, problems: list[Problem], passed: str, *, log: str = "") -> Check:
        """Failed with its problems, or passed saying what was checked."""
        if not problems:
            return cls(name, ok=True, detail=passed)
        log = log or "; ".join(p.describe() for p in problems)
        return cls(name, ok=False, detail=_count(problems), problems=tuple(problems), log=log)

    @classmethod
    def skip(cls, name: str, why: str) -> Check:
        return cls(name, ok=True, detail=f"skipped: {why}", skipped=True)

    def as_json(self) -> dict[str, Any]:
        status = "skip" if self.skipped else "ok" if self.ok else "fail"
        return {
            "stage": self.name,
            "status": status,
            "detail": self.detail,
            "problems": [p.as_json() for p in self.problems],
        }


@dataclass(frozen=True)
class CheckReport:
    checks: list[Check] = field(default_factory=list)
    tests: TestRun | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def problems(self) -> list[str]:
        """One line per failed stage, `stage: file:line: message; …` (a hot reload's reason)."""
        return [f"{c.name}: {c.log or c.detail}" for c in self.checks if not c.ok]


def _count(problems: list[Problem]) -> str:
    groups = len({p.group for p in problems})
    return f"{len(problems)} problem(s) in {groups} place(s)"


def compile_problem(error: str) -> Problem:
    """`bulkhead/lib/lib.rego:74:1: expecting expression` as file, line and message."""
    found = _LOCATED.match(error)
    if found is None:
        return Problem("policies", error)
    message = f"{found['message']} (column {found['col']})"
    return Problem(found["file"], message, int(found["line"]))


def case_problems(bundle: PolicyBundle, engine: EmbeddedEngine) -> list[Problem]:
    """Every example of cases/ must validate and give exactly its expected decision."""
    problems: list[Problem] = []
    for name, text in bundle.cases.items():
        group = f"cases/{name}"
        try:
            raw = json.loads(text)
            case = PolicyCase.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            problems.append(Problem(group, f"invalid case: {_first_line(exc)}"))
            continue
        # Its document is the input as written (absent and null differ in Rego).
        decision = engine.decide(case.input)
        changes = diff_decisions(
            case.expected.verdict, case.expected.steps, decision.verdict, decision.steps
        )
        problems += [Problem(group, f"{c.describe()} (expected → actual)") for c in changes]
        problems += [
            Problem(group, f"missing reason {reason!r}")
            for reason in case.expected.reasons_include
            if reason not in decision.reasons
        ]
    return problems


def _feasibility(bundle: PolicyBundle, engine: EmbeddedEngine) -> list[Check]:
    """The inventory against the adapters, then every case's and the sweep's steps."""
    # Imported here: the adapters' client libraries (SCIM, OPC UA...) take a second to
    # load, and a hot reload, which skips these stages, should not pay for them.
    from orchestrator.policy.feasibility import (  # noqa: PLC0415
        case_step_problems,
        sweep_problems,
    )
    from orchestrator.policy.inventory_contract import inventory_problems  # noqa: PLC0415
    from orchestrator.policy.planning import AdapterBuildError, StepAdapters  # noqa: PLC0415

    inventory = bundle.data.get("inventory", {})
    try:
        adapters = StepAdapters.from_inventory(inventory)
    except AdapterBuildError as exc:
        return [
            Check.of("inventory", [Problem("data/inventory.json", str(exc))], ""),
            Check.skip("steps", "the adapters cannot be built from the inventory"),
        ]
    lines = key_lines(bundle.data_texts.get("inventory", ""))
    contract = inventory_problems(inventory, adapters, lines)
    steps = case_step_problems(bundle, engine, adapters)
    swept, count = sweep_problems(inventory, engine, adapters)
    return [
        Check.of("inventory", contract, f"fits the adapters ({adapters.names()})"),
        Check.of(
            "steps",
            steps + swept,
            f"every step of {len(bundle.cases)} case(s) and {count} sweep input(s) "
            "is accepted by its adapter",
        ),
    ]


def _decisions(bundle: PolicyBundle, *, data_ok: bool, adapters: bool) -> list[Check]:
    if not data_ok:
        why = "the data is invalid"
        return [Check.skip(name, why) for name in ("cases", "inventory", "steps")]
    engine = EmbeddedEngine.from_bundle(bundle)
    checks = [Check.of("cases", case_problems(bundle, engine), f"{len(bundle.cases)} ok")]
    return checks + (_feasibility(bundle, engine) if adapters else [])


def _rego_tests(bundle: PolicyBundle) -> tuple[Check, TestRun | None]:
    try:
        run = run_tests(bundle)
    except PolicyLoadError as exc:
        return Check.of("rego tests", [compile_problem(str(exc))], ""), None
    bad = [r for r in run.results if r.status in ("fail", "error")]
    problems = [Problem(f"data.{r.package}", f"{r.name} ({r.status}): {r.message}") for r in bad]
    log = "failing: " + ", ".join(f"{r.path} ({r.status})" for r in bad)
    return Check.of("rego tests", problems, f"{run.count('pass')} passed", log=log), run


def check_bundle(
    bundle: PolicyBundle, *, rego_tests: bool = True, adapters: bool = True
) -> CheckReport:
    try:
        rego = compile_bundle(bundle)
    except PolicyLoadError as exc:
        return CheckReport([Check.of("compile", [compile_problem(str(exc))], "")])
    checks = [Check("compile", ok=True, detail=f"{len(bundle.modules)} module(s)")]
    data = data_file_problems(bundle)
    checks.append(Check.of("data", data, _documents(bundle)))
    keys = data_key_problems(bundle, rego)
    del rego  # regorus engines must die on their own thread: this one, now
    checks.append(Check.of("data keys", keys, "every key read exists, every key is read"))
    checks += _decisions(bundle, data_ok=not data, adapters=adapters)
    run: TestRun | None = None
    if rego_tests and bundle.tests:
        check, run = _rego_tests(bundle)
        checks.append(check)
    return CheckReport(checks, run)


def _documents(bundle: PolicyBundle) -> str:
    return ", ".join(f"data.{name}" for name in sorted(bundle.data)) or "no data documents"


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
