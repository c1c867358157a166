"""`bulkhead policy check` and `policy test` results as people and CI read them.

Text groups problems by stage, then by what they are about (a file, a case, an inventory
record, a swept asset), one problem per line; JSON carries the same, for CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.policy.check import Check
from orchestrator.policy.problems import Problem
from orchestrator.policy.testing import TestResult, TestRun, line_ranges

INDENT = "      "
LABELS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skip": "SKIP"}


def _grouped(problems: Sequence[Problem]) -> list[str]:
    lines: list[str] = []
    groups: dict[str, list[Problem]] = {}
    for problem in problems:
        groups.setdefault(problem.group, []).append(problem)
    for group, items in groups.items():
        lines.append(f"{INDENT}{group}")
        for item in items:
            where = f"line {item.line}: " if item.line is not None else ""
            lines.append(f"{INDENT}  {where}{item.message}")
    return lines


def check_text(checks: Sequence[Check]) -> str:
    lines: list[str] = []
    for check in checks:
        status = "skip" if check.skipped else "ok" if check.ok else "FAIL"
        lines.append(f"{status:<5} {check.name:<11} {check.detail}".rstrip())
        lines += _grouped(check.problems)
    ok = all(c.ok for c in checks)
    lines.append("policy check passed" if ok else "policy check FAILED")
    return "\n".join(lines)


def check_json(checks: Sequence[Check], *, policy_dir: str, version: str) -> dict[str, Any]:
    return {
        "ok": all(c.ok for c in checks),
        "policy_dir": policy_dir,
        "policy_version": version,
        "stages": [c.as_json() for c in checks],
    }


def _test_line(result: TestResult) -> list[str]:
    took = f" ({result.duration_s * 1000:.1f} ms)" if result.status != "skip" else ""
    lines = [f"  {LABELS[result.status]:<5} {result.name}{took}"]
    if result.status in ("fail", "error"):
        lines.append(f"{INDENT}  {result.message}")
        lines += [f"{INDENT}  print: {line}" for line in result.prints]
    return lines


def tests_text(run: TestRun, *, coverage: bool) -> str:
    """Results by package; failures again at the end by full name (what --run takes)."""
    lines: list[str] = []
    packages: dict[str, list[TestResult]] = {}
    for result in run.results:
        packages.setdefault(result.package, []).append(result)
    for package, results in packages.items():
        passed = sum(1 for r in results if r.status == "pass")
        lines.append(f"data.{package}  ({passed} of {len(results)} passed)")
        for result in results:
            lines += _test_line(result)
    if coverage:
        lines.append("\ncoverage (policy modules; lines not covered):")
        for file in run.coverage:
            missing = line_ranges(file.not_covered) or "-"
            lines.append(f"  {file.path:<44} {file.percent:5.1f}%  {missing}")
    failed = [r for r in run.results if r.status in ("fail", "error")]
    if failed:
        lines.append("\nfailed:")
        lines += [f"  {LABELS[r.status]:<5} {r.path}" for r in failed]
    passed, bad = run.count("pass"), run.count("fail") + run.count("error")
    lines.append(f"\n{passed} passed, {bad} failed, {run.count('skip')} skipped")
    return "\n".join(lines)


def tests_json(run: TestRun) -> dict[str, Any]:
    return {
        "ok": run.ok,
        "passed": run.count("pass"),
        "failed": run.count("fail") + run.count("error"),
        "skipped": run.count("skip"),
        "results": [
            {
                "test": r.path,
                "status": r.status,
                "duration_s": r.duration_s,
                "message": r.message,
                "prints": r.prints,
            }
            for r in run.results
        ],
        "coverage": [
            {"path": f.path, "percent": f.percent, "not_covered": f.not_covered}
            for f in run.coverage
        ],
    }
