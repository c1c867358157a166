"""`bulkhead policy eval|check|replay` as a policy engineer runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator import logs
from orchestrator.cli.main import main
from orchestrator.config import DEFAULT_POLICY_DIR, REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "findings" / "traffic-controller-compromise.json"
RECORDED = REPO_ROOT / "examples" / "findings" / "replay.jsonl"


@pytest.fixture(autouse=True)
def _keep_logging_as_is(monkeypatch):
    """main() configures structlog to print to the sys.stderr of the moment, which is this
    test's capture; later tests would log into a closed stream."""
    monkeypatch.setattr(logs, "configure", lambda level="info": None)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["policy", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_POLICY_DIR, tmp_path / "policies"))


def make_energy_automatic(policies: Path) -> None:
    """A risky edit a reviewer must see: the energy zone is no longer essential."""
    path = policies / "data" / "inventory.json"
    data = json.loads(path.read_text())
    data["zones"]["energy"]["essential"] = False
    path.write_text(json.dumps(data, indent=2))


# --- eval ------------------------------------------------------------------------------------


def test_eval_of_a_finding_prints_the_decision_as_json(capsys):
    code, out, _ = run(capsys, "eval", "--input", str(EXAMPLE))
    assert code == 0
    decision = json.loads(out)
    assert decision["verdict"] == "contain"
    assert decision["steps"][0]["id"] == "fallback:tsc-0001"


def test_eval_of_a_case_file_with_overrides(capsys):
    case = DEFAULT_POLICY_DIR / "cases" / "traffic-controller-compromise.json"
    code, out, _ = run(capsys, "eval", "--input", str(case), "--paused")
    assert code == 0
    assert json.loads(out)["steps"][0]["approval"]["required"] == 1


def test_eval_explain_says_why_each_step_needs_its_approval(capsys):
    case = DEFAULT_POLICY_DIR / "cases" / "scada-critical-energy-isolation.json"
    code, out, _ = run(capsys, "eval", "--input", str(case), "--explain")
    assert code == 0
    assert "verdict   contain" in out
    assert "assets    scada-e01 (energy, essential)" in out
    assert "isolate:energy: nftables contain zone=energy" in out
    assert "2 approval(s) from duty-officer, responder, incl. duty-officer" in out
    assert "because zone energy is essential: 2 approvals, a duty-officer among them" in out
    assert "bulkhead/containment/guardrails.rego:" in out


def test_eval_of_an_invalid_finding_names_the_bad_fields(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads(EXAMPLE.read_text()), "severity_id": "high"}))
    code, _, err = run(capsys, "eval", "--input", str(bad))
    assert code == 2
    assert "/severity_id:" in err


# --- check -----------------------------------------------------------------------------------


def test_check_fails_on_a_broken_policy_and_says_where(policies, capsys):
    path = policies / "bulkhead" / "lib" / "lib.rego"
    path.write_text(path.read_text() + "\noops := {\n")
    code, out, _ = run(capsys, "check", str(policies))
    assert code == 1
    assert "FAIL  compile     bulkhead/lib/lib.rego:" in out
    assert "policy check FAILED" in out


def test_check_fails_when_a_case_no_longer_holds(policies, capsys):
    make_energy_automatic(policies)
    code, out, _ = run(capsys, "check", str(policies))
    assert code == 1
    assert "FAIL  cases" in out
    assert "substation-rtu-essential.json: ~ fallback:rtu-e01 approval: 2 approval(s)" in out


# --- replay ----------------------------------------------------------------------------------


def test_replay_against_an_identical_baseline_changes_nothing(capsys):
    code, out, _ = run(
        capsys, "replay", str(RECORDED), "--baseline", str(DEFAULT_POLICY_DIR), "--fail-on-change"
    )
    assert code == 0
    assert "0 of 7 decision(s) changed." in out


def test_replay_shows_changed_approvals_per_incident(policies, capsys):
    make_energy_automatic(policies)
    code, out, _ = run(
        capsys,
        "replay",
        str(RECORDED),
        "--baseline",
        str(DEFAULT_POLICY_DIR),
        "--policy-dir",
        str(policies),
        "--fail-on-change",
    )
    assert code == 1
    rows = {line.split()[1]: line for line in out.splitlines() if line[:5].strip().isdigit()}
    rtu = rows["inc-rtu-e01"]
    assert "~ fallback:rtu-e01 approval: 2 approval(s) from duty-officer|responder" in rtu
    assert rtu.endswith("incl. duty-officer, 900 s then escalate → automatic")
    assert "(unchanged)" in rows["inc-tsc-0001"]
    assert "3 of 7 decision(s) changed." in out  # rtu, scada, and svc-scada (used in energy)


def test_replay_shows_new_and_removed_steps_and_verdicts(policies, capsys):
    path = policies / "data" / "guardrails.json"
    data = json.loads(path.read_text())
    data["severity"]["isolate_zone_at"] = 4  # high now isolates zones too
    data["confidence"]["low"] = 3  # and "high confidence" now counts as low
    path.write_text(json.dumps(data))
    code, out, _ = run(
        capsys,
        "replay",
        str(RECORDED),
        "--baseline",
        str(DEFAULT_POLICY_DIR),
        "--policy-dir",
        str(policies),
    )
    assert code == 0
    assert "contain → observe" in out
    assert "- fallback:tsc-0001 (modbus set asset=tsc-0001, automatic)" in out


def test_replay_of_a_file_without_findings_is_an_error(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("# nothing recorded\n")
    code, _, err = run(capsys, "replay", str(empty), "--baseline", str(DEFAULT_POLICY_DIR))
    assert code == 1
    assert "no findings" in err


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_replay_against_a_git_ref_exports_that_versions_policies(tmp_path, capsys):
    """A throwaway repository in tmp_path: the baseline is its HEAD, the candidate its tree."""
    repo = tmp_path / "repo"
    policies = Path(shutil.copytree(DEFAULT_POLICY_DIR, repo / "policies"))
    identity = ["-c", "user.name=Policy Test", "-c", "user.email=policy@example.invalid"]
    for argv in (["init", "-q"], ["add", "policies"], [*identity, "commit", "-q", "-m", "base"]):
        subprocess.run(["git", *argv], cwd=repo, check=True, capture_output=True)
    make_energy_automatic(policies)
    code, out, _ = run(
        capsys, "replay", str(RECORDED), "--baseline", "HEAD", "--policy-dir", str(policies)
    )
    assert code == 0
    assert out.startswith("Replayed 7 recorded incident(s): baseline HEAD (sha256:")
    assert "3 of 7 decision(s) changed." in out


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_replay_against_an_unknown_ref_says_what_git_said(tmp_path, capsys):
    repo = tmp_path / "repo"
    policies = Path(shutil.copytree(DEFAULT_POLICY_DIR, repo / "policies"))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, capture_output=True)
    code, _, err = run(
        capsys, "replay", str(RECORDED), "--baseline", "no-such-ref", "--policy-dir", str(policies)
    )
    assert code == 1
    assert "error: git archive" in err
