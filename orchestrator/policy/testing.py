"""`opa test` semantics on regorus: run every `test_*` rule of the `<pkg>_test` packages.

A test passes when its rule evaluates to `true`; `false` or undefined is a failure, a
Rego error is an error. `todo_test_*` rules are listed as skipped, as OPA does. regorus
supports `with input as` / `with data.x as`, coverage and `print` capture, which is all
a runner needs. Tests are discovered from regorus's own AST, so what runs is what parsed.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import regorus

from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.compiled import compile_bundle
from orchestrator.policy.errors import rego_error

Status = Literal["pass", "fail", "error", "skip"]
TEST_PREFIX = "test_"
TODO_PREFIX = "todo_test_"


@dataclass(frozen=True)
class TestResult:
    package: str
    name: str
    status: Status
    duration_s: float = 0.0
    message: str = ""
    prints: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"data.{self.package}.{self.name}"


@dataclass(frozen=True)
class FileCoverage:
    path: str
    covered: list[int]
    not_covered: list[int]

    @property
    def percent(self) -> float:
        total = len(self.covered) + len(self.not_covered)
        return 100.0 if total == 0 else 100.0 * len(self.covered) / total


@dataclass(frozen=True)
class TestRun:
    results: list[TestResult]
    coverage: list[FileCoverage] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def ok(self) -> bool:
        """Green only when something ran and nothing failed: an empty run proves nothing."""
        return self.count("pass") > 0 and self.count("fail") == 0 and self.count("error") == 0


def _ref_path(node: dict[str, Any]) -> list[str]:
    """`a.b.c` from regorus's nested Var/RefDot AST nodes."""
    if "Var" in node:
        return [str(node["Var"]["value"])]
    if "RefDot" in node:
        ref = node["RefDot"]
        return [*_ref_path(ref["refr"]), str(ref["field"][1])]
    raise ValueError(f"unexpected reference node {sorted(node)}")


def _rule_name(rule: dict[str, Any]) -> str | None:
    """The name of a value rule (`test_x if …`, `test_x := …`); None for functions and defaults."""
    spec = rule.get("Spec")
    if spec is None:
        return None
    (kind, head), *_ = spec["head"].items()
    if kind == "Func":
        return None
    path = _ref_path(head["refr"])
    return path[0] if len(path) == 1 else None


def discover(engine: regorus.Engine) -> list[tuple[str, str]]:
    """(package, rule) of every test and todo test, in file order, each once."""
    found: list[tuple[str, str]] = []
    for module in json.loads(engine.get_ast_as_json()):
        package = ".".join(_ref_path(module["ast"]["package"]["refr"]))
        if not package.endswith("_test"):
            continue
        for rule in module["ast"]["rules"]:
            name = _rule_name(rule)
            is_test = name is not None and name.startswith((TEST_PREFIX, TODO_PREFIX))
            if is_test and (package, name) not in found:
                found.append((package, name))  # type: ignore[arg-type]
    return found


def run_tests(bundle: PolicyBundle, *, coverage: bool = False, match: str | None = None) -> TestRun:
    """Run the bundle's tests against its modules and data; raises PolicyLoadError."""
    engine = compile_bundle(bundle, with_tests=True)
    engine.set_gather_prints(True)
    if coverage:
        engine.set_enable_coverage(True)
    pattern = re.compile(match) if match else None
    results: list[TestResult] = []
    for package, name in discover(engine):
        if pattern is not None and not pattern.search(f"{package}.{name}"):
            continue
        if name.startswith(TODO_PREFIX):
            results.append(TestResult(package, name, "skip", message="todo"))
            continue
        results.append(_run_one(engine, package, name))
    files = _coverage(engine, bundle) if coverage else []
    return TestRun(results=results, coverage=files)


def _run_one(engine: regorus.Engine, package: str, name: str) -> TestResult:
    # Tests take their input from `with input as`; a leftover input must not leak in.
    engine.set_input_json("{}")
    started = time.perf_counter()
    try:
        value = json.loads(engine.eval_rule_as_json(f"data.{package}.{name}"))
    except RuntimeError as exc:
        status: Status = "error"
        message = rego_error(exc)
    else:
        status = "pass" if value is True else "fail"
        message = "" if value is True else f"got {json.dumps(value)}"
    elapsed = time.perf_counter() - started
    prints = [str(p) for p in engine.take_prints()]
    return TestResult(package, name, status, elapsed, message, prints)


def _coverage(engine: regorus.Engine, bundle: PolicyBundle) -> list[FileCoverage]:
    report = json.loads(engine.get_coverage_report_as_json())
    return [
        FileCoverage(
            path=entry["path"],
            covered=sorted(entry.get("covered", [])),
            not_covered=sorted(entry.get("not_covered", [])),
        )
        for entry in report.get("files", [])
        if entry["path"] in bundle.modules  # coverage of the policies, not of their tests
    ]


def line_ranges(lines: list[int]) -> str:
    """[3, 4, 5, 9] → "3-5, 9"."""
    spans: list[str] = []
    start = previous = None
    for line in sorted(lines):
        if previous is not None and line == previous + 1:
            previous = line
            continue
        if start is not None:
            spans.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = line
    if start is not None:
        spans.append(str(start) if start == previous else f"{start}-{previous}")
    return ", ".join(spans)
