"""Mutating real documents for property tests: every place in a JSON document, and a copy
with the subtree at one place replaced."""

from __future__ import annotations

import json
from typing import Any


def json_paths(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every node of the document, the root `()` first."""
    found = [path]
    if isinstance(document, dict):
        for key, value in document.items():
            found += json_paths(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += json_paths(value, (*path, index))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of the document with the node at `path` replaced by `value`."""
    if not path:
        return value
    copied = json.loads(json.dumps(document))
    node = copied
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copied
