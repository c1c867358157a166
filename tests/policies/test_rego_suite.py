"""`bulkhead policy test` over policies/: every Rego test runs inside `make test`."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.embedded import compile_bundle
from orchestrator.policy.testing import discover, line_ranges, run_tests

MIN_REGO_TESTS = 30


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(["policy", *argv])
    return code, capsys.readouterr().out


def copy_policies(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_POLICY_DIR, tmp_path / "policies"))


def test_every_rego_test_of_the_shipped_policies_passes(capsys):
    code, out = run_cli(capsys, "test", "--policy-dir", str(DEFAULT_POLICY_DIR))
    failing = [line for line in out.splitlines() if line.startswith(("FAIL", "ERROR"))]
    assert code == 0, "\n".join(failing) or out
    passed = int(re.search(r"^(\d+) passed, 0 failed", out, re.MULTILINE).group(1))
    assert passed >= MIN_REGO_TESTS


def test_each_test_is_reported_pass_or_fail_by_name_under_its_package(capsys):
    _, out = run_cli(capsys, "test", "--policy-dir", str(DEFAULT_POLICY_DIR))
    package = out.index("data.bulkhead.approval_test  (")
    test = re.search(r"^  PASS  test_viewer_never_mutates_anything \(\d+\.\d ms\)$", out, re.M)
    assert test is not None
    assert test.start() > package
    assert re.search(r"^data\.bulkhead\.lib_test  \((\d+) of \1 passed\)$", out, re.M)


def test_json_output_lists_every_test_with_its_status_for_ci(tmp_path, capsys):
    policies = copy_policies(tmp_path)
    approval = policies / "bulkhead" / "approval" / "approval.rego"
    approval.write_text(
        approval.read_text().replace(
            'automation_roles := {"duty-officer", "admin"}',
            'automation_roles := {"duty-officer", "admin", "viewer"}',
        )
    )
    code, out = run_cli(capsys, "test", "--policy-dir", str(policies), "--json")
    document = json.loads(out)
    assert code == 1
    assert document["ok"] is False
    assert document["failed"] >= 1
    assert document["passed"] + document["failed"] + document["skipped"] == len(document["results"])
    statuses = {r["test"]: r["status"] for r in document["results"]}
    assert statuses["data.bulkhead.approval_test.test_viewer_never_mutates_anything"] == "fail"


def test_every_policy_package_has_tests_beside_it():
    bundle = PolicyBundle.read(DEFAULT_POLICY_DIR)
    packages = {package for package, _ in discover(compile_bundle(bundle, with_tests=True))}
    assert packages == {
        "bulkhead.approval_test",
        "bulkhead.containment_test",
        "bulkhead.lib_test",
        "bulkhead.notify_test",
    }


def test_a_failing_rego_test_fails_the_command_and_says_which(tmp_path, capsys):
    policies = copy_policies(tmp_path)
    approval = policies / "bulkhead" / "approval" / "approval.rego"
    # A regression: viewers may now pause automation.
    approval.write_text(
        approval.read_text().replace(
            'automation_roles := {"duty-officer", "admin"}',
            'automation_roles := {"duty-officer", "admin", "viewer"}',
        )
    )
    code, out = run_cli(capsys, "test", "--policy-dir", str(policies))
    assert code == 1
    assert "  FAIL  test_viewer_never_mutates_anything (" in out
    # Again at the end, by the full name `--run` takes.
    failed = out[out.index("\nfailed:\n") :]
    assert "  FAIL  data.bulkhead.approval_test.test_viewer_never_mutates_anything" in failed
    assert re.search(r"^\d+ passed, [1-9]\d* failed", out, re.M)


def test_a_rego_error_in_a_test_is_reported_as_an_error(tmp_path, capsys):
    policies = copy_policies(tmp_path)
    (policies / "bulkhead" / "lib" / "broken_test.rego").write_text(
        "package bulkhead.lib_test\n\ntest_divides_by_zero if 1 / 0 == 1\n"
    )
    code, out = run_cli(capsys, "test", "--policy-dir", str(policies))
    assert code == 1
    assert "  ERROR data.bulkhead.lib_test.test_divides_by_zero" in out
    assert "divide by zero" in out


def test_no_test_at_all_is_a_failure_not_a_pass(tmp_path, capsys):
    policies = copy_policies(tmp_path)
    for test_file in policies.rglob("*_test.rego"):
        test_file.unlink()
    code, out = run_cli(capsys, "test", "--policy-dir", str(policies))
    assert code == 1
    assert "0 passed, 0 failed" in out


def test_run_filter_selects_tests_by_package_and_name(capsys):
    code, out = run_cli(
        capsys, "test", "--policy-dir", str(DEFAULT_POLICY_DIR), "--run", "lib_test.test_joined"
    )
    assert code == 0
    assert "1 passed, 0 failed" in out


def test_coverage_lists_every_policy_module_with_its_uncovered_lines(capsys):
    code, out = run_cli(capsys, "test", "--policy-dir", str(DEFAULT_POLICY_DIR), "--coverage")
    assert code == 0
    for module in PolicyBundle.read(DEFAULT_POLICY_DIR).modules:
        assert re.search(rf"^  {re.escape(module)}\s+\d+\.\d%", out, re.M), module


def test_uncovered_lines_show_up_in_the_coverage(tmp_path):
    policies = copy_policies(tmp_path)
    lib = policies / "bulkhead" / "lib" / "lib.rego"
    lib.write_text(lib.read_text() + "\nnever_called(x) := x + 1\n")
    run = run_tests(PolicyBundle.read(policies), coverage=True)
    (lib_coverage,) = [f for f in run.coverage if f.path == "bulkhead/lib/lib.rego"]
    last_line = len(lib.read_text().splitlines())
    assert last_line in lib_coverage.not_covered
    assert lib_coverage.percent < 100


def test_todo_tests_are_skipped_not_run(tmp_path):
    policies = copy_policies(tmp_path)
    (policies / "bulkhead" / "lib" / "todo_test.rego").write_text(
        "package bulkhead.lib_test\n\ntodo_test_someday if false\n"
    )
    run = run_tests(PolicyBundle.read(policies), match="someday")
    (result,) = run.results
    assert result.status == "skip"


def test_prints_of_a_failing_test_are_shown(tmp_path, capsys):
    policies = copy_policies(tmp_path)
    (policies / "bulkhead" / "lib" / "print_test.rego").write_text(
        'package bulkhead.lib_test\n\ntest_says_why if {\n\tprint("looking at", 42)\n\tfalse\n}\n'
    )
    code, out = run_cli(capsys, "test", "--policy-dir", str(policies), "--run", "test_says_why")
    assert code == 1
    assert "print: bulkhead/lib/print_test.rego:4: looking at 42" in out


@pytest.mark.parametrize(
    ("lines", "shown"),
    [([], ""), ([3], "3"), ([3, 4, 5, 9], "3-5, 9"), ([9, 1, 2], "1-2, 9")],
)
def test_line_ranges_are_compact(lines, shown):
    assert line_ranges(lines) == shown
