"""The line of every key in a JSON text, so a problem with data can name file and line.

The standard json module keeps no positions; this walks the text once, letting
JSONDecoder.raw_decode read each key and scalar where it starts. Paths are tuples of
keys, with list indexes as strings: ("zones", "traffic", "cidrs", "0").
"""

from __future__ import annotations

import json

KeyPath = tuple[str, ...]
_WHITESPACE = " \t\r\n"
_DECODER = json.JSONDecoder()


class _Walker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lines: dict[KeyPath, int] = {}

    def skip(self, at: int) -> int:
        while at < len(self.text) and self.text[at] in _WHITESPACE:
            at += 1
        return at

    def line_of(self, at: int) -> int:
        return self.text.count("\n", 0, at) + 1

    def value(self, at: int, path: KeyPath) -> int:
        """Parse the value starting at `at`; return the index just after it."""
        at = self.skip(at)
        opener = self.text[at]
        if opener == "{":
            return self.container(at + 1, path, "}", keyed=True)
        if opener == "[":
            return self.container(at + 1, path, "]", keyed=False)
        _, end = _DECODER.raw_decode(self.text, at)
        return end

    def container(self, at: int, path: KeyPath, closer: str, *, keyed: bool) -> int:
        index = 0
        at = self.skip(at)
        if self.text[at] == closer:
            return at + 1
        while True:
            at = self.skip(at)
            if keyed:
                key, after = _DECODER.raw_decode(self.text, at)  # a key is a JSON string
                self.lines.setdefault((*path, key), self.line_of(at))
                at = self.skip(after) + 1  # past the colon
                child: KeyPath = (*path, key)
            else:
                child = (*path, str(index))
                self.lines.setdefault(child, self.line_of(self.skip(at)))
            at = self.skip(self.value(at, child))
            index += 1
            if self.text[at] == closer:
                return at + 1
            at += 1  # past the comma


def key_lines(text: str) -> dict[KeyPath, int]:
    """Key path → 1-based line of the key; {} for text that is not JSON (reported elsewhere)."""
    try:
        json.loads(text)
    except ValueError:
        return {}
    walker = _Walker(text)
    walker.value(0, ())
    return walker.lines
