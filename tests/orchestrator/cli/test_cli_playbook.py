"""`bulkhead playbook check FILE` and `bulkhead incidents export --cacao ID`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cacao_views import lab_addresses, quarantine_awaiting
from cli_canned import against, run

from orchestrator.api.problems import Problem
from orchestrator.cli import client
from orchestrator.standards.cacao import playbook

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cacao"


def check(capsys, tmp_path: Path, file: Path) -> tuple[int, str, list[str]]:
    return run(capsys, "playbook", "check", str(file), "--state-dir", str(tmp_path))


def test_a_valid_playbook_exits_0_and_says_so(capsys, tmp_path):
    code, out, err = check(capsys, tmp_path, FIXTURES / "valid.json")
    assert code == 0
    assert out.endswith("a valid CACAO 2.0 playbook (4 workflow steps)\n")
    assert err == []


@pytest.mark.parametrize(
    ("fixture", "pointer"),
    [
        ("missing-workflow-start.json", "/workflow_start"),
        ("wrong-spec-version.json", "/spec_version"),
        ("bad-id-prefix.json", "/id"),
        ("dangling-on-success.json", "/workflow/action--be84ee77-2262-463f-902d-2f86b550ef53/"),
    ],
)
def test_a_broken_playbook_exits_1_with_one_line_per_problem(capsys, tmp_path, fixture, pointer):
    code, out, err = check(capsys, tmp_path, FIXTURES / fixture)
    assert code == client.EXIT_FAILED == 1
    (line,) = out.splitlines()
    assert line.startswith(pointer)
    assert err == [f"{FIXTURES / fixture}: 1 problem(s)"]


def test_a_file_that_is_not_json_is_a_problem_not_a_traceback(capsys, tmp_path):
    path = tmp_path / "playbook.json"
    path.write_text("{'type': 'playbook'}")
    code, out, _ = check(capsys, tmp_path, path)
    assert code == 1
    assert out.startswith("(document): not JSON")


def test_an_unreadable_file_exits_2(capsys, tmp_path):
    code, out, err = check(capsys, tmp_path, tmp_path / "absent.json")
    assert code == client.EXIT_USAGE == 2
    assert out == ""
    assert err[0].startswith("error: cannot read")


def test_export_prints_the_playbook_the_api_answers(api, capsys, tmp_path):
    document = playbook(quarantine_awaiting(), addresses=lab_addresses())
    api.answer("GET", "/v1/incidents/inc-eng-ws-03/cacao", document)
    argv = against(api, tmp_path, "incidents", "export", "--cacao", "inc-eng-ws-03")
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert json.loads(out) == document
    assert api.seen[-1].authorization == "Bearer tok"


def test_export_writes_a_file_that_playbook_check_accepts(api, capsys, tmp_path):
    api.answer(
        "GET",
        "/v1/incidents/inc-eng-ws-03/cacao",
        playbook(quarantine_awaiting(), addresses=lab_addresses()),
    )
    output = tmp_path / "inc.cacao.json"
    argv = against(api, tmp_path, "incidents", "export", "--cacao", "inc-eng-ws-03")
    code, out, _ = run(capsys, *argv, "-o", str(output))
    assert (code, out) == (0, "")
    assert check(capsys, tmp_path, output)[0] == 0


def test_export_of_an_unknown_incident_is_a_refusal(api, capsys, tmp_path):
    api.answer("GET", "/v1/incidents/nope/cacao", Problem(404, "no incident 'nope'"))
    code, _, err = run(capsys, *against(api, tmp_path, "incidents", "export", "--cacao", "nope"))
    assert code == client.EXIT_REFUSED
    assert err == ["error: 404 Not Found: no incident 'nope'"]
