"""Data-key lint: every `data.*` path the policies read exists (in the data or its schema),
and every key of the data is read by a policy, by Bulkhead, or listed as kept on purpose.
A typo names the file and the line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.config import DEFAULT_POLICY_DIR, REPO_ROOT
from orchestrator.policy.bundle import PolicyBundle, tree_hash
from orchestrator.policy.check import check_bundle
from orchestrator.policy.datakeys import READ_BY_BULKHEAD, data_key_problems, matches, split
from orchestrator.policy.datareads import policy_reads
from orchestrator.policy.embedded import EmbeddedEngine, compile_bundle
from orchestrator.policy.jsonpos import key_lines
from orchestrator.policy.problems import Problem
from orchestrator.policy.reload import reload_once

GUARDRAILS_REGO = "bulkhead/containment/guardrails.rego"


def lint(policies: Path) -> list[Problem]:
    bundle = PolicyBundle.read(policies)
    return data_key_problems(bundle, compile_bundle(bundle))


def replace_in(path: Path, old: str, new: str) -> None:
    """The first occurrence only: one edit, as a person makes it."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_the_shipped_policies_read_only_what_exists_and_leave_nothing_unread():
    assert lint(DEFAULT_POLICY_DIR) == []


def test_a_key_renamed_in_the_data_fails_check_naming_file_and_line(policies, capsys):
    """The issue's rename of max_automatic_containments, done in data/guardrails.json."""
    guardrails = policies / "data" / "guardrails.json"
    replace_in(guardrails, "max_automatic_containments", "max_automatic_containment")
    line = line_of(guardrails, "max_automatic_containment")
    code = main(["policy", "check", "--policy-dir", str(policies)])
    out = capsys.readouterr().out
    assert code == 1
    keys = out[out.index("FAIL  data keys") : out.index("skip  cases")]
    assert "      data/guardrails.json\n" in keys
    assert (
        f"        line {line}: guardrails.blast_radius.max_automatic_containment is read by no "
        "policy and by nothing in Bulkhead (did you mean max_automatic_containments?)"
    ) in keys
    # The data stage says the same from the schema's side, on the same line.
    assert f"line {line}: blast_radius.max_automatic_containments: Field required" in out


def test_a_key_misspelt_in_the_rego_names_the_rego_file_and_line(policies):
    rego = policies / GUARDRAILS_REGO
    replace_in(
        rego, "blast_radius.max_automatic_containments", "blast_radius.max_automatic_contaiments"
    )
    guardrails = policies / "data" / "guardrails.json"
    assert lint(policies) == [
        Problem(
            GUARDRAILS_REGO,
            "reads data.guardrails.blast_radius.max_automatic_contaiments, but "
            "guardrails.blast_radius has no key 'max_automatic_contaiments' in "
            "data/guardrails.json or its schema (did you mean max_automatic_containments?)",
            line_of(rego, "max_automatic_contaiments"),
        ),
        # The other side of the same typo: the real key is now read by nothing.
        Problem(
            "data/guardrails.json",
            "guardrails.blast_radius.max_automatic_containments is read by no policy and by "
            "nothing in Bulkhead (did you mean max_automatic_contaiments?); if it is kept on "
            "purpose, list it under unread_data in lint.json",
            line_of(guardrails, "max_automatic_containments"),
        ),
    ]


def test_the_misspelt_read_fails_the_whole_check_where_the_tests_might_not(policies):
    rego = policies / GUARDRAILS_REGO
    replace_in(
        rego, "blast_radius.max_automatic_containments", "blast_radius.max_automatic_contaiments"
    )
    report = check_bundle(PolicyBundle.read(policies), rego_tests=False)
    (keys,) = [c for c in report.checks if c.name == "data keys"]
    assert not keys.ok
    assert any(
        line.startswith("data keys: bulkhead/containment/guardrails.rego:")
        for line in report.problems()
    )


async def test_a_hot_reload_of_a_misspelt_read_is_rejected_and_the_old_version_serves(policies):
    engine = EmbeddedEngine(policies)
    serving = engine.version
    replace_in(
        policies / GUARDRAILS_REGO,
        "blast_radius.max_automatic_containments",
        "blast_radius.max_automatic_contaiments",
    )
    assert await reload_once(engine) == "rejected"
    assert engine.version == serving
    assert engine.last_rejection is not None
    assert engine.last_rejection.reason.startswith(f"data keys: {GUARDRAILS_REGO}:")


def test_a_misspelt_field_of_an_inventory_record_read_through_the_input_is_named(policies):
    """The policy reads assets from the input, where Bulkhead puts inventory records."""
    steps = policies / "bulkhead" / "containment" / "steps.rego"
    replace_in(steps, "\tasset.ip\n", "\tasset.ipv4\n")
    (problem,) = lint(policies)
    assert problem.group == "bulkhead/containment/steps.rego"
    assert problem.line == line_of(steps, "asset.ipv4")
    assert problem.message.startswith(
        "reads data.inventory.assets[_].ipv4, but inventory.assets[_]"
    )


def test_a_read_of_a_data_document_that_does_not_exist_is_named(policies):
    containment = policies / "bulkhead" / "containment" / "containment.rego"
    replace_in(containment, "guardrails := data.guardrails #", "guardrails := data.guardrail #")
    problems = [p for p in lint(policies) if "no data document" in p.message]
    assert [(p.line, p.message) for p in problems] == [
        (
            line_of(containment, "data.guardrail #"),
            "reads data.guardrail, but there is no data document 'guardrail' "
            "(data/: guardrails, inventory) (did you mean guardrails?)",
        )
    ]


def test_a_new_unread_key_is_named_until_it_is_listed_as_kept_on_purpose(policies):
    inventory = policies / "data" / "inventory.json"
    replace_in(
        inventory,
        '"criticality": "critical",',
        '"criticality": "critical",\n      "owner": "grid ops",',
    )
    (problem,) = lint(policies)
    assert problem == Problem(
        "data/inventory.json",
        "inventory.zones.energy.owner is read by no policy and by nothing in Bulkhead; if it "
        "is kept on purpose, list it under unread_data in lint.json",
        line_of(inventory, '"owner"'),
    )
    settings = json.loads((policies / "lint.json").read_text())
    settings["unread_data"]["inventory.zones.*.owner"] = "who to call, for people"
    (policies / "lint.json").write_text(json.dumps(settings, indent=2))
    assert lint(policies) == []


def test_a_lint_entry_that_matches_nothing_is_reported(policies):
    settings = json.loads((policies / "lint.json").read_text())
    settings["unread_data"]["inventory.zones.*.ownr"] = "a typo hiding nothing"
    (policies / "lint.json").write_text(json.dumps(settings))
    assert lint(policies) == [
        Problem(
            "lint.json", "unread_data entry 'inventory.zones.*.ownr' matches no data key: remove it"
        )
    ]


def test_editing_lint_json_moves_the_tree_hash_so_a_reload_looks_again(policies):
    before = tree_hash(policies)
    (policies / "lint.json").write_text('{"unread_data": {}}\n')
    assert tree_hash(policies) != before
    assert PolicyBundle.read(policies).tree_hash == tree_hash(policies)


def test_a_schema_declared_key_absent_from_the_data_is_a_valid_read():
    """Optional keys (a zone's essential_services) may be absent from every record."""
    bundle = PolicyBundle.read(DEFAULT_POLICY_DIR)
    data = json.loads(json.dumps(bundle.data))
    for zone in data["inventory"]["zones"].values():
        zone.pop("essential_services")
    problems = data_key_problems(bundle.with_data(data), compile_bundle(bundle))
    assert not [p for p in problems if "essential_services" in p.message]


def test_reads_follow_rules_imports_and_function_parameters():
    """zones := object.get(data.inventory, "zones", {}) passed to lib.essential_zones(zones, …)
    reads data.inventory.zones[_].essential inside lib.rego."""
    reads = policy_reads(compile_bundle(PolicyBundle.read(DEFAULT_POLICY_DIR)))
    found = {(r.path, r.file) for r in reads}
    assert (("inventory", "zones", "*", "essential"), "bulkhead/lib/lib.rego") in found
    assert (
        ("guardrails", "blast_radius", "max_automatic_containments"),
        GUARDRAILS_REGO,
    ) in found
    assert (
        ("inventory", "systems", "*", "revocation", "reversible"),
        "bulkhead/containment/steps.rego",
    ) in found


def test_reads_through_an_import_alias_every_and_a_local_variable():
    module = """package bulkhead.example

import data.inventory as city

all_guarded if {
\tevery zone in city.zones {
\t\tzone.cidrs
\t}
}

strict if {
\tlimits := data.guardrails.severity
\tlimits.act_at > 3
}
"""
    bundle = PolicyBundle.from_parts({"example.rego": module}, {})
    reads = {(r.path, r.line, r.whole) for r in policy_reads(compile_bundle(bundle))}
    assert (("inventory", "zones", "*", "cidrs"), 7, False) in reads  # tested, not used
    assert (("guardrails", "severity", "act_at"), 13, True) in reads  # compared: used


@pytest.mark.parametrize("pattern", sorted(READ_BY_BULKHEAD))
def test_each_key_bulkhead_is_said_to_read_is_read_by_the_module_named(pattern):
    """The list is hand-written: each entry's module must at least mention the key."""
    module = (REPO_ROOT / READ_BY_BULKHEAD[pattern]).read_text()
    key = split(pattern)[-1]
    assert re.search(rf"\b{re.escape(key)}\b", module), (
        f"{READ_BY_BULKHEAD[pattern]} never names {key}"
    )


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.b.d", False),
        ("**.description", "inventory.zones.traffic.description", True),
        ("**.description", "description", True),
        ("a.**", "a.b.c", True),
        ("a.b", "a.b.c", False),
    ],
)
def test_key_patterns(pattern, path, expected):
    assert matches(split(pattern), split(path)) is expected


def test_key_lines_are_the_lines_of_the_keys():
    text = '{\n  "a": [1, {"b": 2}],\n  "c": {\n    "d": "x: \\"y\\""\n  }\n}\n'
    assert key_lines(text) == {
        ("a",): 2,
        ("a", "0"): 2,
        ("a", "1"): 2,
        ("a", "1", "b"): 2,
        ("c",): 3,
        ("c", "d"): 4,
    }
    assert key_lines("not json") == {}
