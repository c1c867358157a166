"""Every connector: the registry, every fixture, the samples, and arbitrary JSON.

Fixture files are named for what they must do: `invalid-*` rejects every alert,
`partial-*` rejects some, `ignored-*` skips every record, anything else is accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutation import json_paths, replaced

from contracts.decision import DecideRequest, Verdict
from contracts.findings import Finding
from orchestrator.api.webhook_docs import example_payload
from orchestrator.config import DEFAULT_POLICY_DIR, REPO_ROOT
from orchestrator.ingest.connectors import CONNECTORS
from orchestrator.ingest.connectors.base import InvalidPayload, Item
from orchestrator.ingest.connectors.severity import TABLES, Labels, Ranges
from orchestrator.ingest.entity import entity_of, incident_id_for
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.input import containment_input
from orchestrator.wiring.inventory import Inventory

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "siem"
SOURCES = ["generic", "splunk", "elastic", "sentinel", "wazuh", "suricata", "falco", "alertmanager"]
NOW_MS = 1_800_000_000_000
EN_DASH = "\u2013"  # ranges in docs/SIEMS.md are written with an en dash


def documents(path: Path) -> list[Any]:
    if path.suffix == ".ndjson":
        return [json.loads(line) for line in path.read_text().splitlines() if _parses(line)]
    return [json.loads(path.read_text())]


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def fixture_files() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*/*") if p.suffix in (".json", ".ndjson"))


def test_registry_holds_the_designed_sources():
    assert sorted(CONNECTORS) == sorted(SOURCES)
    for source, connector in CONNECTORS.items():
        assert connector.source == source
        assert connector.title


def test_every_source_has_fixtures_and_a_sample():
    for source in SOURCES:
        assert len(list((FIXTURES / source).iterdir())) >= 2, source
        assert example_payload(source) is not None, source


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_does_what_its_name_says(path: Path):
    connector = CONNECTORS[path.parent.name]
    items: list[Item] = []
    for document in documents(path):
        items += connector.items(document, NOW_MS)
    accepted = [i for i in items if i.finding is not None]
    rejected = [i for i in items if i.errors]
    ignored = [i for i in items if i.ignored]
    assert all(bool(i.finding) + bool(i.errors) + bool(i.ignored) == 1 for i in items)
    if path.name.startswith("invalid-"):
        assert rejected
        assert not accepted
    elif path.name.startswith("partial-"):
        assert rejected
        assert accepted
    elif path.name.startswith("ignored-"):
        assert ignored
        assert not accepted
        assert not rejected
    else:
        assert accepted
        assert not rejected, [e for i in rejected for e in i.errors]
    for item in accepted:
        assert item.finding is not None
        # What crosses into Temporal must survive the JSON round trip unchanged.
        again = Finding.model_validate_json(item.finding.model_dump_json())
        assert again == item.finding
        assert item.finding.raw_data


@pytest.mark.parametrize("source", SOURCES)
def test_sample_implicates_an_inventory_asset_and_is_contained(source: str):
    """examples/findings/<source>.json, through the default policy, contains something."""
    findings = CONNECTORS[source].normalize(example_payload(source), NOW_MS)
    inventory = Inventory.load(DEFAULT_POLICY_DIR)
    request = DecideRequest(incident_id=incident_id_for(entity_of(findings[0])), findings=findings)
    policy_input = containment_input(request, inventory)
    assert policy_input.assets, "the sample names no inventory asset"
    decision = EmbeddedEngine(DEFAULT_POLICY_DIR).decide(policy_input)
    assert decision.verdict is Verdict.CONTAIN
    assert decision.steps


# --- arbitrary JSON ------------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> tuple[str, Any]:
    """A real vendor payload with one subtree replaced by arbitrary JSON: deep coverage."""
    path = draw(st.sampled_from(fixture_files()))
    document = draw(st.sampled_from(documents(path)))
    where = draw(st.sampled_from(json_paths(document)))
    return path.parent.name, replaced(document, where, draw(JSON))


def _never_raises(source: str, payload: Any) -> None:
    connector = CONNECTORS[source]
    items = connector.items(payload, NOW_MS)
    for item in items:
        assert bool(item.finding) + bool(item.errors) + bool(item.ignored) == 1
        if item.finding is not None:
            Finding.model_validate_json(item.finding.model_dump_json())
    try:
        connector.normalize(payload, NOW_MS)
    except InvalidPayload as exc:
        assert exc.errors


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(source=st.sampled_from(SOURCES), payload=JSON)
def test_arbitrary_json_gives_items_or_validation_errors_never_exceptions(source, payload):
    _never_raises(source, payload)


@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=mutated_fixtures())
def test_mutated_vendor_payloads_never_raise_anything_but_validation_errors(case):
    source, payload = case
    _never_raises(source, payload)


# --- severity tables, as documented ---------------------------------------------------------


def render(source: str) -> str:
    """The markdown table docs/SIEMS.md shows for a source (kept in step by this test)."""
    lines = []
    for table in TABLES[source]:
        lines += [f"| `{table.field}` | OCSF `severity_id` |", "|---|---|"]
        if isinstance(table, Labels):
            lines += [
                f"| `{label}` | {int(s)} {s.name.title()} |" for label, s in table.labels.items()
            ]
        if isinstance(table, Ranges):
            for low, high, s in table.ranges:
                span = str(low) if low == high else f"{low}{EN_DASH}{high}"
                lines.append(f"| {span} | {int(s)} {s.name.title()} |")
        lines.append("")
    return "\n".join(lines)


@pytest.mark.parametrize("source", sorted(TABLES))
def test_docs_show_each_severity_table_as_the_code_has_it(source: str):
    docs = (REPO_ROOT / "docs" / "SIEMS.md").read_text()
    assert render(source) in docs, f"docs/SIEMS.md lacks this table:\n{render(source)}"
