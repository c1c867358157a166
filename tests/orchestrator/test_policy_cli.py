"""`bulkhead policy eval|check|replay|cases` as a policy engineer runs them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator import logs
from orchestrator.cli.main import main
from orchestrator.config import DEFAULT_POLICY_DIR, REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "findings" / "traffic-controller-compromise.json"
RECORDED = REPO_ROOT / "examples" / "findings" / "replay.jsonl"
SPLUNK = REPO_ROOT / "examples" / "findings" / "splunk.json"


@pytest.fixture(autouse=True)
def _keep_logging_as_is(monkeypatch):
    """main() configures structlog to print to the sys.stderr of the moment, which is this
    test's capture; later tests would log into a closed stream."""
    monkeypatch.setattr(logs, "configure", lambda level="info", **_: None)


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
    code, out, _ = run(capsys, "eval", str(EXAMPLE))
    assert code == 0
    decision = json.loads(out)
    assert decision["verdict"] == "contain"
    assert decision["steps"][0]["id"] == "fallback:tsc-0001"


def test_eval_of_a_case_file_with_overrides(capsys):
    case = DEFAULT_POLICY_DIR / "cases" / "traffic-controller-compromise.json"
    code, out, _ = run(capsys, "eval", str(case), "--paused")
    assert code == 0
    assert json.loads(out)["steps"][0]["approval"]["required"] == 1


def test_eval_explain_says_why_each_step_needs_its_approval(capsys):
    case = DEFAULT_POLICY_DIR / "cases" / "scada-critical-energy-isolation.json"
    code, out, _ = run(capsys, "eval", str(case), "--explain")
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
    code, _, err = run(capsys, "eval", str(bad))
    assert code == 2
    assert "/severity_id:" in err


def test_eval_source_runs_the_siems_own_payload_through_its_connector(capsys):
    """Splunk's alert action JSON, as Splunk posts it: the connector makes the finding."""
    code, out, err = run(capsys, "eval", "--source", "splunk", str(SPLUNK))
    assert code == 0, err
    decision = json.loads(out)
    assert decision["verdict"] == "contain"
    assert [s["id"] for s in decision["steps"]] == [
        "fallback:tsc-0002",  # its `dest` address names the controller
        "revoke:svc-signals@ldap-city",  # its `user` names the shared identity
        "revoke:svc-signals@vault-city",
    ]


def test_eval_without_source_reads_a_siem_payload_as_ocsf_and_says_what_is_missing(capsys):
    code, _, err = run(capsys, "eval", str(SPLUNK))
    assert code == 2
    assert "/finding_info: Field required" in err


def test_eval_source_reads_a_batch_source_line_by_line(tmp_path, capsys):
    """Suricata's EVE is NDJSON: each line an event, non-alerts skipped with a note."""
    alert = json.loads((REPO_ROOT / "examples" / "findings" / "suricata.json").read_text())
    batch = tmp_path / "eve.json"
    flow = {"timestamp": alert["timestamp"], "event_type": "flow", "src_ip": "198.18.40.77"}
    batch.write_text(json.dumps(flow) + "\n" + json.dumps(alert) + "\n")
    code, out, err = run(capsys, "eval", "--source", "suricata", str(batch), "--explain")
    assert code == 0, err
    assert "note: the suricata connector skips /0: event_type 'flow' is not an alert" in err
    assert "findings  1, highest severity_id" in out


def test_eval_source_names_the_bad_fields_of_a_payload(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"result": {"src": "198.18.40.77"}}))
    code, _, err = run(capsys, "eval", "--source", "splunk", str(bad))
    assert code == 2
    assert "invalid field(s) in the splunk payload" in err
    assert re.search(r"^  /sid: ", err, re.M)


def test_eval_of_an_unknown_source_lists_the_known_ones(capsys):
    code, _, err = run(capsys, "eval", "--source", "qradar", str(SPLUNK))
    assert code == 2
    assert "unknown source 'qradar' (sources: alertmanager, elastic, falco, generic," in err


def test_eval_input_still_works_with_a_note(capsys):
    code, out, err = run(capsys, "eval", "--input", str(EXAMPLE))
    assert code == 0
    assert json.loads(out)["verdict"] == "contain"
    assert "note: `bulkhead policy eval --input FILE` is deprecated; write " in err


def test_eval_needs_a_file(capsys):
    code, _, err = run(capsys, "eval")
    assert code == 2
    assert "error: bulkhead policy eval needs the FILE to evaluate" in err


# --- one argument style ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["test", "check", "schemas"])
def test_the_old_positional_policy_dir_still_works_with_a_note(capsys, command):
    code, _, err = run(capsys, command, str(DEFAULT_POLICY_DIR))
    assert code in (0, 1)  # the schemas of a tree in flux may be stale; the note is the point
    assert (
        f"note: `bulkhead policy {command} DIR` is deprecated; write "
        f"`bulkhead policy {command} --policy-dir DIR`"
    ) in err


def test_two_different_policy_dirs_are_refused(tmp_path, capsys):
    code, _, err = run(capsys, "check", str(tmp_path), "--policy-dir", str(DEFAULT_POLICY_DIR))
    assert code == 2
    assert "two policy directories" in err


@pytest.mark.parametrize("command", ["test", "eval", "check", "replay", "schemas"])
def test_every_policy_command_takes_policy_dir(command):
    from orchestrator.cli.main import build_parser  # noqa: PLC0415 - the parser itself

    extra = {"eval": ["x.json"], "replay": ["x.jsonl", "--baseline", "HEAD"]}.get(command, [])
    args = build_parser().parse_args(["policy", command, *extra, "--policy-dir", "/p"])
    assert args.policy_dir == Path("/p")


# --- check -----------------------------------------------------------------------------------


def test_check_fails_on_a_broken_policy_and_says_where(policies, capsys):
    path = policies / "bulkhead" / "lib" / "lib.rego"
    path.write_text(path.read_text() + "\noops := {\n")
    code, out, _ = run(capsys, "check", "--policy-dir", str(policies))
    assert code == 1
    assert "FAIL  compile     1 problem(s) in 1 place(s)\n      bulkhead/lib/lib.rego\n" in out
    assert re.search(r"^        line \d+: expecting expression \(column 1\)$", out, re.M)
    assert "policy check FAILED" in out


def test_check_fails_when_a_case_no_longer_holds(policies, capsys):
    make_energy_automatic(policies)
    code, out, _ = run(capsys, "check", "--policy-dir", str(policies))
    assert code == 1
    # Grouped by case: the case's name once, then each change on its own line.
    case = out.index("      cases/substation-rtu-essential.json\n")
    change = out.index("        ~ fallback:rtu-e01 approval: 2 approval(s)", case)
    assert out.rindex("FAIL  cases ", 0, case) < case < change


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


# --- cases update ----------------------------------------------------------------------------


def test_cases_update_changes_nothing_when_the_cases_hold(policies, capsys):
    before = {p.name: p.read_bytes() for p in (policies / "cases").glob("*.json")}
    code, out, _ = run(capsys, "cases", "update", "--policy-dir", str(policies))
    assert code == 0
    assert out.strip() == f"updated 0 of {len(before)} case(s)"
    assert {p.name: p.read_bytes() for p in (policies / "cases").glob("*.json")} == before


def case_count(policies: Path) -> int:
    return len(list((policies / "cases").glob("*.json")))


def test_cases_update_dry_run_shows_the_diff_and_writes_nothing(policies, capsys):
    make_energy_automatic(policies)
    case = policies / "cases" / "substation-rtu-essential.json"
    before = case.read_text()
    code, out, _ = run(capsys, "cases", "update", "--policy-dir", str(policies), "--dry-run")
    assert code == 0
    assert case.read_text() == before
    section = out[out.index("cases/substation-rtu-essential.json\n") :]
    assert "  ~ fallback:rtu-e01 approval: 2 approval(s) from" in section
    assert "--- cases/substation-rtu-essential.json (expected)" in section
    assert '-          "required": 2,' in section
    assert '+          "required": 0,' in section
    # rtu, scada, svc-scada (used in energy), and the two OpenC2 commands about energy
    assert f"would update 5 of {case_count(policies)} case(s)" in out


def test_cases_update_writes_the_new_expectations_and_check_then_holds(policies, capsys):
    make_energy_automatic(policies)
    code, out, _ = run(capsys, "check", "--policy-dir", str(policies))
    assert "FAIL  cases" in out
    code, out, _ = run(capsys, "cases", "update", "--policy-dir", str(policies))
    assert code == 0
    assert f"updated 5 of {case_count(policies)} case(s)" in out
    # Pinned reasons the decision no longer gives are dropped, and said so.
    assert "  - reason no longer given, dropped: 'zone energy is essential: never contained" in out
    _, out, _ = run(capsys, "check", "--policy-dir", str(policies))
    assert re.search(rf"^ok    cases       {case_count(policies)} ok$", out, re.M)
    case = json.loads((policies / "cases" / "substation-rtu-essential.json").read_text())
    assert case["expected"]["steps"][0]["approval"]["required"] == 0


def test_cases_update_refuses_a_case_the_policy_fails_on(policies, capsys):
    guardrails = policies / "bulkhead" / "containment" / "guardrails.rego"
    guardrails.write_text(guardrails.read_text().replace('"required": 2,', '"required": 2 / 0,'))
    code, _, err = run(capsys, "cases", "update", "--policy-dir", str(policies))
    assert code == 1
    assert "the policy fails: " in err
    assert "not updated" in err
