"""Readable regorus error messages."""

from __future__ import annotations

import re

_LOCATION = re.compile(r"^-->\s*(\S+)")
_ERROR = re.compile(r"^error:\s*(.+)$")


def rego_error(exc: BaseException) -> str:
    """`file:line:col: what broke` from a regorus message (which ends in a native backtrace)."""
    text = str(exc).split("Stack backtrace:")[0].strip()
    location = message = None
    for line in text.splitlines():
        line = line.strip()  # noqa: PLW2901 - normalizing the loop variable is the point
        if location is None and (found := _LOCATION.match(line)):
            location = found.group(1)
        elif message is None and (found := _ERROR.match(line)):
            message = found.group(1)
    if message is None:
        first = text.splitlines()[0] if text else type(exc).__name__
        return first if location is None else f"{location}: {first}"
    return message if location is None else f"{location}: {message}"
