"""Every time a responder reads is UTC, labelled, with its distance from now
(orchestrator/responders/times.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from orchestrator.responders import times

NOW = datetime(2026, 12, 7, 0, 21, 39, tzinfo=UTC)


def test_a_time_in_another_offset_is_shown_in_utc_with_the_label():
    paris = datetime(2026, 12, 7, 1, 21, 39, 512, tzinfo=timezone(timedelta(hours=1)))
    assert times.utc(paris.isoformat()) == "2026-12-07 00:21:39 UTC"
    assert times.utc(paris) == "2026-12-07 00:21:39 UTC"
    # A naive ISO text (older payloads) is UTC, not the local zone of whoever reads it.
    assert times.utc("2026-12-07T00:21:39") == "2026-12-07 00:21:39 UTC"


def test_countdowns_ahead_and_behind():
    assert times.relative(NOW + timedelta(minutes=14, seconds=20), NOW) == "in 14 min"
    assert times.relative(NOW - timedelta(minutes=3, seconds=5), NOW) == "3 min ago"
    assert times.relative(NOW + timedelta(seconds=40), NOW) == "in 40 s"
    assert times.relative(NOW + timedelta(hours=5), NOW) == "in 5 h"
    assert times.relative(NOW - timedelta(days=3), NOW) == "3 d ago"
    assert times.relative(NOW, NOW) == "now"
    assert times.labelled((NOW + timedelta(minutes=14)).isoformat(), NOW) == (
        "2026-12-07 00:35:39 UTC (in 14 min)"
    )


def test_passed_is_true_only_for_a_time_behind_us():
    assert times.passed(NOW - timedelta(seconds=1), NOW)
    assert not times.passed(NOW + timedelta(seconds=1), NOW)
    assert not times.passed(None, NOW)
    assert not times.passed("soon", NOW)


def test_what_is_no_time_is_shown_as_it_is_never_an_error():
    assert times.utc(None) == "-"
    assert times.utc("") == "-"
    assert times.utc("next tuesday") == "next tuesday"
    assert times.relative("next tuesday", NOW) == ""
    assert times.labelled("next tuesday", NOW) == "next tuesday"
