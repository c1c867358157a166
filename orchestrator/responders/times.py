"""Every time a responder reads, in one zone and labelled: `2026-12-07 00:21:39 UTC`, and
how far it is from now ("in 14 min", "3 min ago").

One zone for everyone because an on-call team spans several: "14:05" on a page is a
question, "14:05:00 UTC" is not. Stdlib only: the CLI's light commands import it
(tests/orchestrator/cli/test_lazy_imports.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

NONE = "-"
_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR


def parse(value: str | datetime | None) -> datetime | None:
    """An ISO 8601 text or a datetime as an aware UTC datetime; None when it is neither.

    A naive value is read as UTC: the workflow and the audit write UTC without saying so
    only in payloads older than the offset they carry today."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc(value: str | datetime | None) -> str:
    """`2026-12-07 00:21:39 UTC`; a text that is no time is shown as it is (never hidden)."""
    moment = parse(value)
    if moment is None:
        return str(value) if value else NONE
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < _MINUTE:
        return f"{int(seconds)} s"
    if seconds < 2 * _HOUR:
        return f"{int(seconds // _MINUTE)} min"
    if seconds < 2 * _DAY:
        return f"{int(seconds // _HOUR)} h"
    return f"{int(seconds // _DAY)} d"


def relative(value: str | datetime | None, now: datetime | None = None) -> str:
    """ "in 14 min" for a time ahead, "3 min ago" for one passed; "" when it is no time."""
    moment = parse(value)
    if moment is None:
        return ""
    delta = (moment - (now or datetime.now(UTC))).total_seconds()
    if abs(delta) < 1:
        return "now"
    return f"in {_span(delta)}" if delta > 0 else f"{_span(delta)} ago"


def labelled(value: str | datetime | None, now: datetime | None = None) -> str:
    """`2026-12-07 00:21:39 UTC (in 14 min)`: the absolute time and the countdown."""
    shown = utc(value)
    near = relative(value, now)
    return f"{shown} ({near})" if near else shown


def passed(value: str | datetime | None, now: datetime | None = None) -> bool:
    """True once the time is behind us; False when it is ahead or no time at all."""
    moment = parse(value)
    return moment is not None and moment <= (now or datetime.now(UTC))
