"""The `generic` connector (OCSF JSON in, findings out) and incident keys derived from them."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from functools import cache
from typing import Any

import pytest

from contracts.findings import ConfidenceId, Finding, SeverityId
from orchestrator.config import REPO_ROOT
from orchestrator.ingest.connectors import CONNECTORS
from orchestrator.ingest.connectors.base import InvalidPayload, pointer
from orchestrator.ingest.connectors.generic import MAX_FINDINGS_PER_PAYLOAD, GenericConnector
from orchestrator.ingest.entity import MAX_SLUG, entity_of, incident_id_for

EXAMPLE = REPO_ROOT / "examples" / "findings" / "traffic-controller-compromise.json"
# Temporal accepts any string, but ids also go into URLs, logs and visibility queries.
# A slug, optionally followed by `~` and the hash of the original entity.
SAFE_ID = re.compile(r"^inc-[a-z0-9._-]+(~[0-9a-f]{16})?$")


@cache
def _example_text() -> str:
    return EXAMPLE.read_text()


def example(**changes: Any) -> dict[str, Any]:
    """A fresh copy of the example finding, with top-level fields replaced."""
    document: dict[str, Any] = json.loads(_example_text())
    document.update(copy.deepcopy(changes))
    return document


def normalize(payload: Any) -> list[Finding]:
    return GenericConnector().normalize(payload)


def pointers_of(payload: Any) -> list[str]:
    with pytest.raises(InvalidPayload) as caught:
        normalize(payload)
    return [e.pointer for e in caught.value.errors]


def finding(**changes: Any) -> Finding:
    return Finding.model_validate(example(**changes))


def _sha16(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- normalize -----------------------------------------------------------------------------


def test_generic_connector_is_registered_under_its_source_name():
    assert isinstance(CONNECTORS["generic"], GenericConnector)


def test_single_object_normalizes_to_one_finding():
    (normalized,) = normalize(example())
    assert normalized.finding_info.uid == "det-2026-0001"
    assert normalized.severity_id is SeverityId.HIGH
    assert normalized.confidence_id is ConfidenceId.HIGH
    assert normalized.resources[0].uid == "tsc-0001"
    assert normalized.evidences[0].dst_endpoint is not None
    assert normalized.evidences[0].dst_endpoint.port == 502
    assert normalized.metadata.product.name == "Lab ICS Monitor"


def test_raw_data_keeps_the_original_json():
    original = example()
    (normalized,) = normalize(original)
    assert normalized.raw_data is not None
    assert json.loads(normalized.raw_data) == original


def test_raw_data_sent_by_the_siem_is_kept_verbatim_not_validated():
    """A vendor's own raw_data (any JSON type) stays inside ours instead of failing."""
    original = example(raw_data={"vendor": ["blob", 1]})
    (normalized,) = normalize(original)
    assert normalized.raw_data is not None
    assert json.loads(normalized.raw_data)["raw_data"] == {"vendor": ["blob", 1]}


def test_bulkheads_own_form_takes_defaults_for_omitted_fields():
    """Bulkhead's normalized form (examples/findings) is not OCSF: optional fields may be
    left out, but `class_uid`, which every OCSF event carries, may not."""
    document = example()
    for optional in ("activity_id", "confidence_id", "resources", "evidences"):
        del document[optional]
    (normalized,) = normalize(document)
    assert normalized.class_uid == 2004
    assert normalized.confidence_id is ConfidenceId.UNKNOWN
    assert normalized.resources == []
    del document["class_uid"]
    assert pointers_of(document) == ["/class_uid"]


@pytest.mark.parametrize("value", [True, 4.0, "4"])
def test_bulkheads_own_form_takes_integers_only_as_integers(value):
    """`severity_id: true` or `4.0` is not an OCSF id, in either form."""
    assert pointers_of([example(), example(severity_id=value)]) == ["/1/severity_id"]


def test_list_of_findings_normalizes_each_in_order():
    first = example()
    second = example(finding_info={"uid": "det-2", "title": "second"}, severity_id=5)
    findings = normalize([first, second])
    assert [f.finding_info.uid for f in findings] == ["det-2026-0001", "det-2"]
    assert findings[1].severity_id is SeverityId.CRITICAL


def test_bad_item_in_a_list_is_pointed_at_by_its_index():
    assert pointers_of([example(), example(severity_id=7)]) == ["/1/severity_id"]


def test_errors_of_several_items_are_all_reported():
    pointers = pointers_of([example(time=-1), example(), example(metadata={})])
    assert pointers == ["/0/time", "/2/metadata/product"]


def test_single_object_errors_have_no_index_prefix():
    assert pointers_of(example(severity_id="high")) == ["/severity_id"]


def test_each_bad_field_is_named_with_a_json_pointer():
    document = example(finding_info={"title": "no uid"})
    del document["metadata"]
    with pytest.raises(InvalidPayload) as caught:
        normalize(document)
    assert sorted(e.pointer for e in caught.value.errors) == ["/finding_info/uid", "/metadata"]
    assert all(e.detail for e in caught.value.errors)
    assert "/finding_info/uid: Field required" in str(caught.value)


def test_bad_field_inside_a_list_is_pointed_at_by_its_position():
    assert pointers_of(example(resources=[{"uid": "a"}, {"uid": ""}])) == ["/resources/1/uid"]


def test_wrong_class_uid_is_rejected():
    assert pointers_of(example(class_uid=2003)) == ["/class_uid"]


def test_an_attribute_outside_bulkheads_form_makes_the_document_ocsf():
    """`unmapped` is no attribute of Bulkhead's form, so OCSF's requirements apply (this
    replaces the test that refused unknown attributes: OCSF documents keep them)."""
    with pytest.raises(InvalidPayload) as caught:
        normalize(example(unmapped={"x": 1}))
    assert [e.pointer for e in caught.value.errors] == ["/category_uid", "/type_uid"]
    assert {e.detail for e in caught.value.errors} == {"Field required"}


def test_the_same_document_made_ocsf_keeps_its_unknown_attribute():
    original = example(unmapped={"x": 1}, category_uid=2, type_uid=200401)
    (normalized,) = normalize(original)
    assert normalized.finding_info.uid == "det-2026-0001"
    assert normalized.raw_data is not None
    assert json.loads(normalized.raw_data)["unmapped"] == {"x": 1}


def test_bulkheads_own_form_refuses_unknown_nested_attributes():
    assert pointers_of(example(finding_info={"uid": "u", "title": "t", "tags": []})) == [
        "/finding_info/tags"
    ]


def test_pointer_escapes_slash_and_tilde_per_rfc_6901():
    finding_info = {"uid": "u", "title": "t", "a/b~c": 1}
    assert pointers_of(example(finding_info=finding_info)) == ["/finding_info/a~1b~0c"]
    assert pointer("a/b", "~", 0) == "/a~1b/~0/0"
    assert pointer() == ""


def test_empty_list_is_rejected():
    with pytest.raises(InvalidPayload, match="expected at least one finding") as caught:
        normalize([])
    assert [e.pointer for e in caught.value.errors] == [""]


def test_more_findings_than_allowed_are_rejected_whole():
    with pytest.raises(InvalidPayload, match=f"at most {MAX_FINDINGS_PER_PAYLOAD} findings"):
        normalize([example()] * (MAX_FINDINGS_PER_PAYLOAD + 1))


def test_non_object_items_are_rejected_by_index():
    with pytest.raises(InvalidPayload) as caught:
        normalize([1, example(), "finding", None])
    errors = caught.value.errors
    assert [e.pointer for e in errors] == ["/0", "/2", "/3"]
    assert {e.detail for e in errors} == {"expected a JSON object"}


@pytest.mark.parametrize("payload", ["finding", 42, None, True])
def test_non_object_payload_is_rejected_at_the_root(payload):
    assert pointers_of(payload) == [""]


# --- entity_of -----------------------------------------------------------------------------


def test_entity_is_the_first_resource_uid():
    resources = [{"uid": "tsc-0002"}, {"uid": "tsc-0001"}]
    assert entity_of(finding(resources=resources)) == "tsc-0002"


def test_entity_without_resources_is_the_evidence_endpoint_ip():
    assert entity_of(finding(resources=[])) == "198.18.40.77"


def test_entity_falls_back_to_the_destination_endpoint_ip():
    evidences = [{"src_endpoint": {"port": 1}, "dst_endpoint": {"ip": "198.18.10.12"}}]
    assert entity_of(finding(resources=[], evidences=evidences)) == "198.18.10.12"


def test_entity_uses_an_endpoint_hostname_when_there_is_no_ip():
    evidences = [{"src_endpoint": {"hostname": "eng-ws-17"}}]
    assert entity_of(finding(resources=[], evidences=evidences)) == "eng-ws-17"


def test_entity_without_endpoints_is_the_user_name_else_uid():
    by_name = [{"user": {"name": "alice", "uid": "S-1-5-21"}}]
    by_uid = [{"user": {"uid": "S-1-5-21"}}]
    assert entity_of(finding(resources=[], evidences=by_name)) == "alice"
    assert entity_of(finding(resources=[], evidences=by_uid)) == "S-1-5-21"


def test_entity_endpoint_beats_user_in_the_same_evidence():
    evidences = [{"user": {"name": "alice"}, "dst_endpoint": {"ip": "198.18.10.13"}}]
    assert entity_of(finding(resources=[], evidences=evidences)) == "198.18.10.13"


def test_entity_endpoint_in_a_later_evidence_beats_a_user():
    """Docstring order is resource, endpoint, user: an endpoint anywhere beats any user."""
    evidences = [{"user": {"name": "alice"}}, {"src_endpoint": {"ip": "198.18.40.77"}}]
    assert entity_of(finding(resources=[], evidences=evidences)) == "198.18.40.77"


def test_entity_of_a_finding_naming_nothing_is_the_finding_itself():
    empty_evidence = [{"src_endpoint": {}, "user": {}}]
    assert entity_of(finding(resources=[], evidences=[])) == "finding:det-2026-0001"
    assert entity_of(finding(resources=[], evidences=empty_evidence)) == "finding:det-2026-0001"


# --- incident_id_for -----------------------------------------------------------------------


def test_incident_id_of_a_safe_entity_is_readable():
    assert incident_id_for("tsc-0001") == "inc-tsc-0001"
    assert incident_id_for("198.18.40.77") == "inc-198.18.40.77"


def test_incident_id_is_stable():
    assert incident_id_for("TSC/1") == incident_id_for("TSC/1")
    assert incident_id_for("TSC/1") == "inc-tsc-1~" + _sha16("TSC/1")


@pytest.mark.parametrize(
    "entity",
    [
        "TSC/1",
        "alice@example.com",
        "CORP\\alice",
        "finding:det-2026-0001",
        "../../etc/passwd",
        "Ampel Hauptstraße",
        "'; DROP WORKFLOW --",
        "---",
        "",
        "x" * 1000,
    ],
)
def test_incident_id_is_workflow_id_safe(entity):
    incident_id = incident_id_for(entity)
    assert SAFE_ID.match(incident_id), incident_id
    assert len(incident_id) <= len("inc-") + MAX_SLUG + len("~") + 16


def test_entities_that_slugify_alike_get_distinct_ids():
    assert incident_id_for("TSC/1") != incident_id_for("tsc-1")
    assert incident_id_for("TSC/1") != incident_id_for("tsc 1")
    assert incident_id_for("Tsc-1") != incident_id_for("tsc-1")


def test_long_entities_sharing_a_prefix_get_distinct_ids():
    stem = "a" * MAX_SLUG
    assert incident_id_for(stem + "1") != incident_id_for(stem + "2")


def test_entity_spelled_like_another_entitys_id_gets_its_own_id():
    """Entities come from SIEM payloads; one must not be able to join another's incident."""
    victim = "TSC/1"
    lookalike = incident_id_for(victim).removeprefix("inc-")
    assert lookalike != victim
    assert incident_id_for(lookalike) != incident_id_for(victim)
