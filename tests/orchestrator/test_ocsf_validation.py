"""What the `generic` source refuses in an OCSF finding, and what it never refuses.

Refused: a missing or ill-typed attribute OCSF requires, an enum id outside OCSF's set,
a type_uid that contradicts class_uid and activity_id, a class other than 2004 and 2001.
Never refused: attributes OCSF does not require, known to it or not.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutation import json_paths, replaced

from contracts.findings import Finding
from orchestrator.config import REPO_ROOT
from orchestrator.ingest.connectors.base import InvalidPayload, pointer
from orchestrator.ingest.connectors.generic import GenericConnector

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "ocsf"
DETECTION = "aws-security-hub.json"  # class 2004, OCSF 1.1
SECURITY = "aws-security-lake-v1.json"  # class 2001, OCSF 1.0


@cache
def _text(name: str) -> str:
    return (FIXTURES / name).read_text()


def fixture(name: str, **changes: Any) -> Any:
    document = copy.deepcopy(json.loads(_text(name)))
    if changes:
        document.update(changes)
    return document


def normalize(payload: Any) -> list[Finding]:
    return GenericConnector().normalize(payload)


def errors_of(payload: Any) -> dict[str, str]:
    with pytest.raises(InvalidPayload) as caught:
        normalize(payload)
    return {e.pointer: e.detail for e in caught.value.errors}


def pointers_of(payload: Any) -> list[str]:
    return list(errors_of(payload))


def without(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = document
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return document


# --- required attributes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ("class_uid",),
        ("category_uid",),
        ("type_uid",),
        ("activity_id",),
        ("severity_id",),
        ("time",),
        ("metadata",),
        ("metadata", "product"),
        ("metadata", "version"),
        ("finding_info",),
        ("finding_info", "uid"),
    ],
    ids="/".join,
)
def test_missing_required_attribute_of_a_detection_finding_is_named(path):
    assert errors_of(without(fixture(DETECTION), path)) == {pointer(*path): "Field required"}


@pytest.mark.parametrize("path", [("finding", "uid"), ("state_id",)], ids="/".join)
def test_missing_required_attribute_of_a_security_finding_is_named(path):
    assert errors_of(without(fixture(SECURITY), path)) == {pointer(*path): "Field required"}


def test_missing_finding_uid_inside_an_array_is_pointed_at_by_its_index():
    bad = without(fixture(DETECTION), ("finding_info", "uid"))
    assert pointers_of([fixture(DETECTION), bad]) == ["/1/finding_info/uid"]


def test_documented_qradar_offense_is_refused_for_what_ocsf_requires():
    """IBM's sample in ocsf/examples omits type_uid and severity_id and puts QRadar's own
    version where the OCSF version belongs."""
    errors = errors_of(fixture("invalid-ibm-qradar.json"))
    assert list(errors) == ["/type_uid", "/severity_id", "/metadata/version"]
    assert "only OCSF 1.x" in errors["/metadata/version"]


@pytest.mark.parametrize("uid", ["", "   "])
def test_blank_finding_uid_is_refused(uid: str):
    document = fixture(DETECTION)
    document["finding_info"]["uid"] = uid
    assert pointers_of(document) == ["/finding_info/uid"]


def test_product_needs_a_name_or_a_uid():
    document = fixture(DETECTION)
    document["metadata"]["product"] = {"vendor_name": "Amazon"}
    assert "name or a uid" in errors_of(document)["/metadata/product"]


# --- strict integers, closed enums, consistency -------------------------------------------


@pytest.mark.parametrize("value", [True, 4.0, "4", "High", None, [4]])
def test_severity_id_must_be_a_json_integer(value):
    assert pointers_of(fixture(DETECTION, severity_id=value)) == ["/severity_id"]


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("class_uid", 2004.0), ("activity_id", "1"), ("time", 1695135922487.0), ("time", True)],
)
def test_required_integers_are_strict(attribute: str, value: Any):
    assert pointer(attribute) in pointers_of(fixture(DETECTION, **{attribute: value}))


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"severity_id": 7}, "/severity_id"),
        ({"confidence_id": 4}, "/confidence_id"),
        ({"activity_id": 4, "type_uid": 200404}, "/activity_id"),
        ({"time": -1}, "/time"),
    ],
)
def test_ids_outside_ocsf_are_refused(changes, where):
    assert pointers_of(fixture(DETECTION, **changes)) == [where]


def test_state_id_outside_ocsf_is_refused():
    assert pointers_of(fixture(SECURITY, state_id=5)) == ["/state_id"]


@pytest.mark.parametrize(("activity", "kind"), [(0, "UNKNOWN"), (99, "OTHER"), (2, "UPDATE")])
def test_unknown_and_other_activities_are_ocsf_values(activity: int, kind: str):
    document = fixture(DETECTION, activity_id=activity, type_uid=200400 + activity)
    (finding,) = normalize(document)
    assert finding.activity_id.name == kind


@pytest.mark.parametrize("confidence", [0, 1, 2, 3, 99])
def test_every_ocsf_confidence_id_is_accepted(confidence: int):
    (finding,) = normalize(fixture(DETECTION, confidence_id=confidence))
    assert int(finding.confidence_id) == confidence


def test_type_uid_must_be_class_uid_times_100_plus_activity_id():
    detail = errors_of(fixture(DETECTION, type_uid=200402))["/type_uid"]
    assert "expected 200401" in detail


def test_security_finding_type_uid_follows_its_own_class():
    assert pointers_of(fixture(SECURITY, type_uid=200402)) == ["/type_uid"]


@pytest.mark.parametrize(
    ("class_uid", "name"), [(2003, "Compliance Finding"), (2002, "Vulnerability Finding")]
)
def test_other_finding_classes_are_refused_by_name(class_uid: int, name: str):
    document = fixture(DETECTION, class_uid=class_uid, type_uid=class_uid * 100 + 1)
    assert name in errors_of(document)["/class_uid"]


def test_category_must_be_findings():
    assert pointers_of(fixture(DETECTION, category_uid=1)) == ["/category_uid"]


@pytest.mark.parametrize("version", ["1.0.0", "1.0.0-rc.2", "1.8.0", "1.9.0-dev", "1.3"])
def test_every_ocsf_1_version_is_read(version: str):
    document = fixture(DETECTION)
    document["metadata"]["version"] = version
    (finding,) = normalize(document)
    assert finding.metadata.version == version


@pytest.mark.parametrize("version", ["0.1.0", "2.0.0", "v1.1.0", "11.0.0", ""])
def test_other_ocsf_versions_are_refused(version: str):
    document = fixture(DETECTION)
    document["metadata"]["version"] = version
    assert pointers_of(document) == ["/metadata/version"]


# --- attributes Bulkhead acts on are type-checked; the rest never refuses -------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("resources", 0, "uid"), 123),
        (("evidences", 0, "src_endpoint", "ip"), 3232235777),
        (("observables", 0, "type_id"), "2"),
    ],
)
def test_ill_typed_attribute_that_names_an_entity_is_refused_at_its_pointer(path, value):
    document = fixture(DETECTION)
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    assert pointers_of(document) == [pointer(*path)]


def test_unknown_and_optional_attributes_are_kept_never_refused():
    document = fixture(DETECTION)
    document["x_city_ticket"] = {"id": 7, "tags": [None, True]}
    document["finding_info"]["x_note"] = ["anything"]
    document["evidences"][0]["x_score"] = 0.5
    document["resources"][0]["labels"] = "not-a-list"
    document["finding_info"]["desc"] = 42  # ill-typed, but only ever displayed
    document["evidences"][0]["src_endpoint"]["port"] = "443"
    document["raw_data"] = {"the": "producer's own"}
    (finding,) = normalize(document)
    assert finding.finding_info.desc is None
    assert finding.raw_data is not None
    assert json.loads(finding.raw_data) == document


# --- arbitrary JSON never raises ------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> Any:
    """A documented finding with one subtree replaced by arbitrary JSON."""
    names = sorted(p.name for p in FIXTURES.glob("*.json"))
    document = fixture(draw(st.sampled_from(names)))
    return replaced(document, draw(st.sampled_from(json_paths(document))), draw(JSON))


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(payload=mutated_fixtures())
def test_mutated_documented_findings_give_findings_or_errors_never_exceptions(payload):
    for item in GenericConnector().items(payload, 0):
        assert bool(item.finding) + bool(item.errors) + bool(item.ignored) == 1
        if item.finding is not None:
            assert Finding.model_validate_json(item.finding.model_dump_json()) == item.finding
        for error in item.errors:
            assert error.pointer == "" or error.pointer.startswith("/")
