"""What the list shows of an incident's kept findings is worked out again only when they
changed (workflows/listing.py ShownMemo), and always as findings_shown would from scratch:
the memo must never show a zone or a severity the findings no longer have."""

from __future__ import annotations

from typing import Any

import pytest
from workflow_fakes import finding

from contracts.findings import Finding
from contracts.visibility import findings_shown
from workflows import listing
from workflows.listing import ShownMemo


def located(uid: str, zone: str, severity: int = 3) -> Finding:
    return finding(uid, resources=[{"uid": f"{uid}-asset", "zone": zone}], severity_id=severity)


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the memo worked the value out (each call: the findings' count)."""
    calls: list[int] = []

    def counting(findings: Any) -> Any:
        calls.append(len(findings))
        return findings_shown(findings)

    monkeypatch.setattr(listing, "findings_shown", counting)
    return calls


def test_unchanged_findings_are_not_walked_again(computed: list[int]):
    memo = ShownMemo()
    kept = [located("a", "traffic"), located("b", "energy", severity=5)]
    first = memo(kept)
    assert memo(kept) is first and memo(list(kept)) is first
    assert computed == [2]
    assert first.zones == {"traffic", "energy"} and first.severity == 5 and first.count == 2


def test_every_change_to_the_kept_list_is_seen(computed: list[int]):
    memo = ShownMemo()
    kept = [located("a", "traffic"), located("b", "energy", severity=5)]
    memo(kept)
    kept.append(located("c", "water"))  # added
    assert memo(kept) == findings_shown(kept)
    kept[1] = located("b", "transit", severity=2)  # replaced in place: same length
    assert memo(kept).zones == {"traffic", "transit", "water"}
    assert memo(kept).severity == 3
    kept.pop(0)  # dropped to make room, then one added: same length as before
    kept.append(located("d", "dispatch", severity=4))
    assert memo(kept) == findings_shown(kept)
    assert memo(kept).zones == {"transit", "water", "dispatch"}
    assert computed == [2, 3, 3, 3]


def test_an_equal_replacement_keeps_the_value(computed: list[int]):
    """An update from the SIEM that changes nothing the list shows may keep the value."""
    memo = ShownMemo()
    kept = [located("a", "traffic")]
    first = memo(kept)
    kept[0] = located("a", "traffic")  # a new object, equal to the old one
    assert memo(kept) is first
    assert computed == [1]


def test_no_findings():
    shown = ShownMemo()([])
    assert shown.zones == frozenset() and shown.severity == 0 and shown.count == 0
