"""`playbook check`'s rules, on playbooks written by hand from the CACAO 2.0 specification
(tests/fixtures/cacao/), never from Bulkhead's own export.

The valid fixture and the broken ones also went through the official JSON schemas
(oasis-open/cacao-json-schemas) once, by hand: the schemas catch the missing
workflow_start and the wrong spec_version, but not the dangling on_success nor the id
with another object's prefix; the checker catches all four.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.standards.cacao_check import check, pointer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cacao"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


def lines(document: Any) -> list[str]:
    return [problem.line() for problem in check(document)]


def step_of(document: dict[str, Any], kind: str) -> str:
    return next(k for k, v in document["workflow"].items() if v["type"] == kind)


def test_a_playbook_written_from_the_specification_is_valid():
    assert lines(load("valid.json")) == []


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("missing-workflow-start.json", "/workflow_start: required property missing"),
        ("wrong-spec-version.json", "/spec_version: must be 'cacao-2.0', not '1.0'"),
        ("bad-id-prefix.json", "/id: must be a playbook id (playbook--UUID), not course-of-"),
        ("dangling-on-success.json", "/on_success: 'action--bc17d928-b22f-428d-8304-924b81f0"),
    ],
)
def test_each_broken_fixture_is_one_problem_at_its_pointer(fixture, expected):
    found = lines(load(fixture))
    assert len(found) == 1, found
    assert expected in found[0]


def test_a_dangling_step_reference_names_the_step_that_holds_it():
    document = load("dangling-on-success.json")
    (problem,) = check(document)
    holder = problem.pointer.split("/")[2]
    assert document["workflow"][holder]["type"] == "action"
    assert problem.pointer == pointer("workflow", holder, "on_success")
    assert "is not a step of the workflow" in problem.message


def broken(change: str) -> dict[str, Any]:
    """The valid fixture with one rule of the specification broken."""
    document = copy.deepcopy(load("valid.json"))
    workflow = document["workflow"]
    action, start, end = (step_of(document, k) for k in ("action", "start", "end"))
    if change == "on_completion with on_success":  # §4.1: mutually exclusive
        workflow[action]["on_completion"] = end
    elif change == "end step goes on":  # an end step has no next step
        workflow[end]["on_completion"] = start
    elif change == "start step branches":  # start MUST NOT use on_success/on_failure
        workflow[start]["on_success"] = action
    elif change == "openc2 without content":
        del workflow[action]["commands"][0]["content_b64"]
    elif change == "openc2 not base64":
        workflow[action]["commands"][0]["content_b64"] = "deny all!"
    elif change == "undefined agent":
        workflow[action]["agent"] = "individual--2ab8dd04-4c36-4f83-a5f1-2b4a4fc3d7a4"
    elif change == "created to the second":  # §3.1: exactly three digits of milliseconds
        document["created"] = "2024-01-15T08:30:00Z"
    elif change == "modified before created":
        document["modified"] = "2024-01-14T08:30:00.000Z"
    elif change == "step type differs from its id":
        workflow[end]["type"] = "start"
    elif change == "action without commands":
        del workflow[action]["commands"]
    elif change == "no end step":
        del workflow[end]
    return document


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("on_completion with on_success", "on_completion excludes on_success/on_failure"),
        ("end step goes on", "/on_completion: a end step must not use on_completion"),
        ("start step branches", "/on_success: a start step must not use on_success"),
        ("openc2 without content", "/commands/0/content_b64: required property of openc2-http"),
        ("openc2 not base64", "/commands/0/content_b64: is not a base64-encoded JSON OpenC2"),
        ("undefined agent", "/agent: 'individual--2ab8dd04-4c36-4f83-a5f1-2b4a4fc3d7a4' is not"),
        ("created to the second", "/created: must be given to the millisecond"),
        ("modified before created", "/modified: must be later than or equal to created"),
        ("step type differs from its id", "a start step's id must start start--"),
        ("action without commands", "/commands: required property of action missing"),
        ("no end step", "/workflow: has no end step"),
    ],
)
def test_each_rule_of_the_specification_is_reported_with_a_pointer(change, expected):
    found = lines(broken(change))
    assert any(expected in line for line in found), found


def test_not_an_object_is_one_problem_about_the_whole_document():
    assert lines([]) == ["(document): a CACAO playbook is a JSON object"]


def test_pointers_escape_slash_and_tilde_as_rfc_6901_says():
    assert pointer("workflow", "a/b~c", 0) == "/workflow/a~1b~0c/0"
