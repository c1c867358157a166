"""Bounded findings (the claim check, #15): whatever a SIEM or an attacker puts in a
finding, what the workflow keeps of it stays small, says what was cut, and still names
the entities the policy needs."""

from __future__ import annotations

from typing import Any

from workflow_fakes import finding

from contracts.compact import FINDING_BYTES, TITLE_CHARS, compact, short_key, size_of
from contracts.findings import Finding, SeverityId
from workflows.kept import KEPT_BYTES, MAX_KEPT, KeptFindings
from workflows.picture import changes_picture, new_keys, picture_keys, stored_key

# Four bytes per character in UTF-8: the worst case for a byte budget counted in chars.
WIDE = "\U0001f6a8"


def heavy(uid: str = "det-heavy", **changes: Any) -> Finding:
    """A finding as an attacker would shape it: every field as long as it may be."""
    base = finding(uid)
    document = base.model_dump(mode="json")
    document["finding_info"]["title"] = WIDE * 5000
    document["finding_info"]["desc"] = "A" * 1_000_000
    document["resources"] = [
        {"uid": f"asset-{i}-" + "r" * 240, "name": WIDE * 400, "type": "x" * 999, "zone": "z" * 999}
        for i in range(300)
    ]
    document["evidences"] = [
        {
            "src_endpoint": {"ip": f"198.18.{i // 250}.{i % 250}", "hostname": WIDE * 300},
            "user": {"name": WIDE * 300, "uid": "u" * 1000},
        }
        for i in range(300)
    ]
    document["raw_data"] = "{" + "x" * 900_000 + "}"
    document.update(changes)
    return Finding.model_validate(document)


def test_a_heavy_finding_is_kept_under_its_byte_budget_and_says_what_was_cut():
    big = heavy()
    assert size_of(big) > 4_000_000
    small = compact(big)
    assert size_of(small) <= FINDING_BYTES
    assert len(small.finding_info.title) == TITLE_CHARS
    assert small.finding_info.title.endswith("…")
    assert small.raw_data is None  # too big to stay inline; the API stored it first
    for pointer in ("/finding_info/title", "/finding_info/desc", "/resources", "/evidences"):
        assert pointer in small.truncated, pointer
    assert "/raw_data" in small.truncated
    # The entities the incident is about survive: the first resource and evidence.
    assert small.resources[0].uid == big.resources[0].uid
    assert small.evidences[0].src_endpoint is not None
    assert small.evidences[0].src_endpoint.ip == "198.18.0.0"


def test_compact_is_idempotent_and_leaves_a_small_finding_alone():
    once = compact(heavy())
    assert compact(once) == once
    ordinary = finding("det-small")
    assert compact(ordinary) == ordinary
    assert compact(ordinary).truncated == []


def test_every_kept_string_is_bounded_even_when_the_lists_are_short():
    document = finding("det-strings").model_dump(mode="json")
    document["resources"] = [{"uid": "tsc-0001", "name": "n" * 10_000, "zone": "z" * 10_000}]
    small = compact(Finding.model_validate(document))
    assert small.resources[0].uid == "tsc-0001"
    assert small.resources[0].name is not None and len(small.resources[0].name) <= 256
    assert small.truncated == ["/resources/0"]


def test_kept_findings_stay_within_count_and_bytes():
    kept = KeptFindings([])
    kept.bound()
    for index in range(MAX_KEPT * 3):
        kept.add(compact(heavy(f"det-{index}")), news=False)
    assert len(kept.items) <= MAX_KEPT
    assert sum(size_of(f) for f in kept.items) <= KEPT_BYTES


def test_news_displaces_the_oldest_of_the_least_severe_when_the_budget_is_spent():
    kept = KeptFindings([])
    kept.bound()
    for index in range(MAX_KEPT):
        kept.add(finding(f"det-{index}", severity_id=int(SeverityId.LOW)), news=False)
    assert not kept.add(finding("det-repeat", severity_id=int(SeverityId.LOW)), news=False)
    critical = finding("det-critical", severity_id=int(SeverityId.CRITICAL))
    assert kept.add(critical, news=True)
    uids = [f.finding_info.uid for f in kept.items]
    assert "det-critical" in uids
    assert "det-0" not in uids  # the oldest low one made room
    assert len(kept.items) == MAX_KEPT


def test_an_update_replaces_the_finding_it_refers_to():
    kept = KeptFindings([finding("det-a"), finding("det-b")])
    kept.bound()
    update = finding("det-a", activity_id=2, severity_id=5)
    assert kept.replace(update)
    assert [f.finding_info.uid for f in kept.items] == ["det-a", "det-b"]
    assert kept.items[0].severity_id == SeverityId.CRITICAL


def test_picture_keys_are_remembered_by_digest_and_matched_in_either_form():
    found = finding("det-pic")
    keys = picture_keys(found)
    digests = {stored_key(k) for k in keys}
    assert all(k.startswith(("severity>=", "h:")) for k in digests)
    assert max(len(k) for k in digests) <= 26
    # A picture carried from an older run holds the keys verbatim: both forms match.
    assert new_keys(keys, found) == set()
    assert new_keys(digests, found) == set()
    assert not changes_picture(digests, found)
    assert short_key("asset:x") == short_key("asset:x") != short_key("asset:y")
