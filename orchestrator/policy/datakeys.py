"""Data-key lint: what the policies read exists, and what the data holds is read.

- Every `data.*` path a policy reads (orchestrator.policy.datareads) must exist in its
  data document or be declared by that document's schema; a typo names the Rego file and
  line, and the keys that do exist there.
- Every key of the data must be read: by a policy, by Bulkhead itself (READ_BY_BULKHEAD:
  the adapters' wiring, the guard, the enrichment), or be listed as kept on purpose under
  `unread_data` in policies/lint.json. An unread key names the data file and line.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import regorus

from orchestrator.policy.bundle import LINT_FILE, PolicyBundle
from orchestrator.policy.datareads import WILDCARD, DataPath, Read, policy_reads
from orchestrator.policy.jsonpos import key_lines
from orchestrator.policy.models import DATA_MODELS
from orchestrator.policy.problems import Problem

ANY_DEPTH = "**"
SIMILAR = 0.8  # how alike a key must be to another to be offered as "did you mean"

# What Bulkhead's Python reads of the data (a read covers everything under the key).
# The reader is named so a reviewer can check the entry; a test checks that each named
# module mentions the key it is said to read.
READ_BY_BULKHEAD: dict[str, str] = {
    "inventory.zones.*.cidrs": "orchestrator/wiring/inventory.py",  # the addresses nftables matches
    "inventory.zones.*.essential": "orchestrator/wiring/inventory.py",  # the incident list's flag
    "inventory.device_types.*.protocol": "orchestrator/wiring/adapters.py",
    "inventory.device_types.*.modes": "orchestrator/wiring/adapters.py",
    "inventory.device_types.*.mode_register": "orchestrator/wiring/inventory.py",
    "inventory.device_types.*.safe_mode": "orchestrator/wiring/adapters.py",
    "inventory.assets.*.ip": "orchestrator/wiring/inventory.py",  # evidence IP → asset; quarantine
    "inventory.assets.*.modbus": "orchestrator/wiring/inventory.py",
    "inventory.assets.*.opcua": "orchestrator/wiring/adapters.py",
    "inventory.assets.*.http": "orchestrator/wiring/adapters.py",
    "inventory.systems.*.adapter": "orchestrator/wiring/adapters.py",
    "inventory.systems.*.connection": "orchestrator/wiring/adapters.py",
    "inventory.services.*.probes": "orchestrator/guard.py",
    # Cross-checked against zones.*.essential_services when the data is loaded.
    "inventory.services.*.zone": "orchestrator/policy/models.py",
    "inventory.services.*.essential": "orchestrator/policy/models.py",
    "inventory.network.enforcement_points": "orchestrator/wiring/inventory.py",
    "inventory.network.conduits.*.cidrs": "orchestrator/wiring/inventory.py",
}


def split(dotted: str) -> DataPath:
    return tuple(dotted.split("."))


def shown(path: Iterable[str]) -> str:
    """("inventory", "zones", "*", "cidrs") → inventory.zones[_].cidrs"""
    text = ""
    for segment in path:
        text += "[_]" if segment == WILDCARD else f".{segment}" if text else segment
    return text


def matches(pattern: DataPath, path: DataPath) -> bool:
    """`*` matches one key (or list index), `**` any number of them."""
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == ANY_DEPTH:
        return any(matches(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and head in (WILDCARD, path[0]) and matches(rest, path[1:])


@dataclass(frozen=True)
class Coverage:
    """What counts as reading a data key: the policies' reads and the whole-key readers."""

    reads: list[Read]
    whole: list[DataPath]  # READ_BY_BULKHEAD and lint.json's unread_data: all under them

    def covers(self, key: DataPath) -> bool:
        for read in self.reads:
            if len(read.path) >= len(key) and matches(read.path[: len(key)], key):
                return True  # this key, or something under it, is read
            if read.whole and matches(read.path, key[: len(read.path)]):
                return True  # something above it is used as a whole
        for pattern in self.whole:
            if any(matches(pattern, key[:depth]) for depth in range(1, len(key) + 1)):
                return True  # the key, or one above it, is read whole
            deeper = ANY_DEPTH not in pattern and len(pattern) > len(key)
            if deeper and matches(pattern[: len(key)], key):
                return True  # something under the key is read
        return False

    def names_near(self, parent: DataPath) -> list[str]:
        """Keys the policies read right under `parent`: what a misspelt key may have meant."""
        depth = len(parent)
        return [
            r.path[depth]
            for r in self.reads
            if len(r.path) > depth and r.path[depth] != WILDCARD and matches(r.path[:depth], parent)
        ]


def _keys(value: Any, path: DataPath = ()) -> Iterator[DataPath]:
    """Every object key at every depth, parents first; list items are walked, not keys."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*path, key)
            yield from _keys(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _keys(child, (*path, str(index)))


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=SIMILAR)
    return f" (did you mean {close[0]}?)" if close else ""


def lint_settings(bundle: PolicyBundle) -> tuple[dict[str, str], list[Problem]]:
    """`unread_data` of lint.json: dotted key pattern → why it is kept though unread."""
    if not bundle.lint.strip():
        return {}, []
    try:
        document = json.loads(bundle.lint)
    except ValueError as exc:
        return {}, [Problem(LINT_FILE, f"not JSON: {exc}")]
    unread = document.get("unread_data", {}) if isinstance(document, dict) else None
    if not isinstance(unread, dict) or not all(isinstance(v, str) for v in unread.values()):
        return {}, [Problem(LINT_FILE, 'expected {"unread_data": {"key.pattern": "why"}}')]
    return unread, []


def data_key_problems(bundle: PolicyBundle, engine: regorus.Engine) -> list[Problem]:
    """Both directions of the lint over a compiled bundle (modules only, no tests)."""
    reads = policy_reads(engine)
    unread, problems = lint_settings(bundle)
    problems += _read_problems(bundle, reads)
    coverage = Coverage(reads, [split(p) for p in [*READ_BY_BULKHEAD, *unread]])
    problems += _unread_problems(bundle, coverage)
    problems += _stale_lint_problems(bundle, unread)
    return problems


# --- what the policies read must exist ------------------------------------------------------


def _in_data(value: Any, path: DataPath) -> bool:
    if not path:
        return True
    head, rest = path[0], path[1:]
    children: Iterable[Any] = ()
    if isinstance(value, dict):
        children = value.values() if head == WILDCARD else [value[head]] if head in value else ()
    elif isinstance(value, list):
        children = value if head == WILDCARD else ()
    return any(_in_data(child, rest) for child in children)


def _schema_branches(node: Any, defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema node with $ref resolved and anyOf/oneOf/allOf spread out."""
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        return _schema_branches(defs.get(str(node["$ref"]).rsplit("/", 1)[-1]), defs)
    combined = [b for key in ("anyOf", "oneOf", "allOf") for b in node.get(key, [])]
    if combined:
        return [branch for b in combined for branch in _schema_branches(b, defs)]
    return [node]


def _in_schema(node: Any, path: DataPath, defs: dict[str, Any]) -> bool:
    """Declared by the schema: a property, a map's values, or a list's items."""
    if not path:
        return True
    head, rest = path[0], path[1:]
    for branch in _schema_branches(node, defs):
        properties: dict[str, Any] = branch.get("properties", {})
        options = list(properties.values()) if head == WILDCARD else [properties.get(head)]
        if isinstance(branch.get("additionalProperties"), dict):
            options.append(branch["additionalProperties"])  # a map: any key is declared
        if head == WILDCARD and isinstance(branch.get("items"), dict):
            options.append(branch["items"])
        if any(_in_schema(o, rest, defs) for o in options if o is not None):
            return True
    return False


def _exists(bundle: PolicyBundle, path: DataPath) -> bool:
    document, rest = path[0], path[1:]
    if document not in bundle.data:
        return False
    if _in_data(bundle.data[document], rest):
        return True
    schema = _schema(document)
    return schema is not None and _in_schema(schema, rest, schema.get("$defs", {}))


@functools.cache
def _schema(document: str) -> dict[str, Any] | None:
    """The document's JSON Schema (as policies/schemas/ has it), generated once."""
    model = DATA_MODELS.get(document)
    return model.model_json_schema() if model is not None else None


def _keys_at(bundle: PolicyBundle, parent: DataPath) -> list[str]:
    """The keys that do exist under `parent` in the data (for suggestions and messages)."""
    names: list[str] = []
    for key in _keys(bundle.data.get(parent[0], {})):
        if len(key) == len(parent) and matches(parent[1:], key[:-1]):
            names.append(key[-1])
    return names


def _read_problem(bundle: PolicyBundle, read: Read) -> tuple[DataPath, str] | None:
    """(the shortest missing prefix, the message) for a read that finds nothing."""
    if read.path[0] not in bundle.data:
        documents = ", ".join(sorted(bundle.data)) or "none"
        message = f"reads data.{shown(read.path)}, but there is no data document {read.path[0]!r}"
        return read.path[:1], f"{message} (data/: {documents}){_suggest(read.path[0], bundle.data)}"
    for depth in range(2, len(read.path) + 1):
        if not _exists(bundle, read.path[:depth]):
            missing, parent = read.path[depth - 1], read.path[: depth - 1]
            known = _keys_at(bundle, parent)
            return read.path[:depth], (
                f"reads data.{shown(read.path)}, but {shown(parent)} has no key {missing!r} in "
                f"data/{read.path[0]}.json or its schema{_suggest(missing, known)}"
            )
    return None


def _read_problems(bundle: PolicyBundle, reads: list[Read]) -> list[Problem]:
    problems: dict[tuple[DataPath, str, int], Problem] = {}
    # Where a path is formed (navigated), not every place a rule holding it is used.
    formed = [r for r in reads if not r.whole]
    for read in sorted(formed, key=lambda r: (r.file, r.line, r.path)):
        found = _read_problem(bundle, read)
        # Reported where the missing key is navigated to, not again on every longer path
        # formed from it (`settings := data.guardrail` feeds every `settings.x`).
        if found is not None and found[0] == read.path:
            missing, message = found
            problems.setdefault(
                (missing, read.file, read.line), Problem(read.file, message, read.line)
            )
    return list(problems.values())


# --- what the data holds must be read -------------------------------------------------------


def _unread_problems(bundle: PolicyBundle, coverage: Coverage) -> list[Problem]:
    problems: list[Problem] = []
    for document, value in sorted(bundle.data.items()):
        lines = key_lines(bundle.data_texts.get(document, ""))
        reported: list[DataPath] = []
        for key in _keys(value):
            path = (document, *key)
            if any(path[: len(r)] == r for r in reported) or coverage.covers(path):
                continue
            reported.append(path)
            hint = _suggest(key[-1], coverage.names_near(path[:-1]))
            message = (
                f"{'.'.join(path)} is read by no policy and by nothing in Bulkhead{hint}; "
                f"if it is kept on purpose, list it under unread_data in {LINT_FILE}"
            )
            problems.append(Problem(f"data/{document}.json", message, lines.get(key)))
    return problems


def _stale_lint_problems(bundle: PolicyBundle, unread: dict[str, str]) -> list[Problem]:
    """An entry that matches no key hides nothing today and would hide a typo tomorrow."""
    keys = [(document, *key) for document, value in bundle.data.items() for key in _keys(value)]
    return [
        Problem(LINT_FILE, f"unread_data entry {pattern!r} matches no data key: remove it")
        for pattern in unread
        if not any(matches(split(pattern), key) for key in keys)
    ]
