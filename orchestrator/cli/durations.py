"""Durations on the command line: `90s`, `15m`, `1h`, `1h30m`, `2d`, or plain seconds.

People think of a lease in minutes and hours; the API takes seconds. Units must come
largest first, each at most once, so `1h30m` reads one way only.
"""

from __future__ import annotations

import argparse
import re

ACCEPTED = "plain seconds (3600) or a duration such as 90s, 15m, 1h, 1h30m, 2d"

_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(
    r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?", re.ASCII
)


def parse_seconds(text: str) -> int:
    """Seconds in `text`; ValueError unless it is a positive duration of an accepted form."""
    cleaned = text.strip().lower()
    if cleaned.isascii() and cleaned.isdigit():
        seconds = int(cleaned)
    else:
        match = _DURATION.fullmatch(cleaned)
        if not cleaned or match is None:
            raise ValueError(f"invalid duration {text!r}: use {ACCEPTED}")
        seconds = sum(int(n) * _SECONDS[unit] for unit, n in match.groupdict().items() if n)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be more than 0 seconds")
    return seconds


def duration(text: str) -> int:
    """argparse `type=`: the seconds, or a usage error that names the accepted forms."""
    try:
        return parse_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
