"""The incident timeline (orchestrator/console/timeline.py) over a real audit trail: a run
of the real workflow on the lab's controllers (one step automatic, one waiting for two
approvers, approved by alice and dora, then released), captured as IncidentView.audit
gave it (tests/console/data/audit_released.json). Shorter trails are its prefixes: what
the incident's page was given at that moment."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from contracts.incident import AuditEntry
from orchestrator.console import timeline
from orchestrator.console.render import fragment

TRAIL = [
    AuditEntry.model_validate(entry)
    for entry in json.loads((Path(__file__).parent / "data/audit_released.json").read_text())
]
GATED = "fallback:tsc-0002"
AUTO = "fallback:tsc-0001"


def upto(seq: int) -> list[AuditEntry]:
    return [entry for entry in TRAIL if entry.seq <= seq]


def at(seq: int) -> datetime:
    return datetime.fromisoformat(next(e.at for e in TRAIL if e.seq == seq))


def lane(shown: timeline.Timeline, name: str) -> timeline.Lane:
    return next(one for one in shown.lanes if one.name == name)


def test_a_released_incident_shows_each_phase_in_order_and_to_scale():
    shown = timeline.of(TRAIL)
    assert shown is not None
    assert [one.name for one in shown.lanes] == ["incident", AUTO, GATED]
    gated = lane(shown, GATED)
    assert [bar.phase for bar in gated.bars] == [
        "awaiting approval", "plan", "apply", "verify", "held (lease)", "roll back",
    ]  # fmt: skip
    # Each phase starts where the one before it ended: one unbroken bar, to scale.
    for before, after in zip(gated.bars, gated.bars[1:], strict=False):
        assert before.end_s == after.start_s
    waited = gated.bars[0]
    assert waited.end_s == pytest.approx((at(12) - at(1)).total_seconds())
    assert [mark.text for mark in gated.marks] == [
        "dry run on the target, for the approvers",
        "approved by alice", "approved by dora", "rolled back",
    ]  # fmt: skip
    assert shown.pct(shown.span_s) == 100.0 and shown.pct(0) == 0.0
    incident = lane(shown, "incident")
    assert [m.text for m in incident.marks] == [
        "finding", "decision: contain", "release asked by dora", "released",
    ]  # fmt: skip
    assert [bar.phase for bar in incident.bars] == ["decide"]


def test_time_to_contain_is_the_first_finding_to_the_last_step_verified():
    shown = timeline.of(TRAIL)
    assert shown is not None
    # seq 16: the gated step verified, the last of the two to hold.
    assert shown.contained_s == pytest.approx((at(16) - at(1)).total_seconds())
    assert shown.first_seq == 1


def test_a_step_still_waiting_runs_open_to_the_edge_and_nothing_is_contained():
    shown = timeline.of(upto(5))
    assert shown is not None
    (waiting,) = lane(shown, GATED).bars
    assert waiting.phase == "awaiting approval" and waiting.open_ended
    assert waiting.end_s == shown.span_s
    assert shown.contained_s is None


def test_a_held_lease_runs_open_and_says_when_it_ends():
    shown = timeline.of(upto(16))
    assert shown is not None
    held = lane(shown, GATED).bars[-1]
    assert held.phase == "held (lease)" and held.open_ended
    verified = [m.text for m in shown.moments if m.lane == GATED][-1]
    assert verified == "verified; lease held until 2026-12-07 01:24:25 UTC"


def test_moments_are_in_time_order_and_unknown_kinds_are_left_out():
    odd = AuditEntry(incident_id="x", seq=99, at=TRAIL[3].at, kind="something.new", detail={})
    bad_time = AuditEntry(incident_id="x", seq=98, at="yesterday", kind="decision", detail={})
    shown = timeline.of([*TRAIL, odd, bad_time])
    assert shown is not None
    offsets = [m.offset_s for m in shown.moments]
    assert offsets == sorted(offsets)
    assert all("something" not in m.text for m in shown.moments)
    assert len(shown.moments) == len(timeline.of(TRAIL).moments)  # type: ignore[union-attr]


def test_a_trail_kept_from_a_later_entry_says_so_and_an_empty_one_draws_nothing():
    shown = timeline.of(TRAIL[9:])
    assert shown is not None and shown.first_seq == 10
    html = fragment("_timeline.html", timeline=shown)
    assert "trail kept here starts at entry 10" in html and "(the first finding)" not in html
    assert timeline.of([]) is None


def test_the_drawing_and_its_text_alternative_label_times_in_utc():
    shown = timeline.of(TRAIL)
    html = fragment("_timeline.html", timeline=shown)
    assert "Contained 0.29 s</strong> after the first entry (the first finding)" in html
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} UTC", html)
    listed = re.findall(r"<li><time datetime=\"([^\"]+)\"", html)
    assert listed == sorted(listed) and len(listed) == len(shown.moments)  # type: ignore[union-attr]
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+%" y="3" width="([\d.]+)%"', html)]
    assert widths and all(0 < w <= 100 for w in widths)


def test_durations_read_as_people_say_them():
    assert timeline.duration(0.2921) == "0.29 s"
    assert timeline.duration(252) == "4 m 12 s"
    assert timeline.duration(7500) == "2 h 5 m"
    assert timeline.duration(42) == "42 s"
