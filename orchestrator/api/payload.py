"""Webhook bodies to JSON documents, within limits, before any connector sees them.

Limits a body size alone does not give: a 1 MiB body can nest 500,000 arrays deep
(Python's parser would hit its recursion limit: a 500 instead of an answer) or hold one
array of 200,000 alerts (200,000 workflow signals). Strings holding an unpaired UTF-16
surrogate (`"\\ud800"` is valid JSON) are refused here: they cannot be encoded as UTF-8,
so they would fail later, in the Temporal payload converter, as a server error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from orchestrator.api.problems import Problem
from orchestrator.ingest.connectors.base import FieldError, Item, pointer

MAX_ERRORS = 50  # a problem document naming a million bad fields helps nobody
# A JSON string, or an unterminated one running to the end; possessive: no backtracking.
_STRINGS = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\Z)')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")


@dataclass(frozen=True)
class Limits:
    max_depth: int
    max_array_items: int


@dataclass(frozen=True)
class Document:
    """One parsed document and where it sits in the body (`/3` for NDJSON record 3)."""

    prefix: str
    value: Any


def too_deep(text: bytes, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit`, without parsing."""
    depth = 0
    for byte in _STRINGS.sub(b"", text).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in _OPENING else -1
        if depth > limit:
            return True
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (RFC 8259 has no NaN or Infinity)")


def json_loads(text: str) -> Any:
    """json.loads without Python's NaN/Infinity extension: they would be stored as is."""
    return json.loads(text, parse_constant=_refuse_constant)


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    return f"not valid JSON: {exc}"  # e.g. an integer past Python's digit limit


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "body is not UTF-8", slug="malformed-json") from None


def violations(value: Any, limits: Limits, prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Arrays over the length limit and strings that are not encodable, by pointer."""
    errors: list[FieldError] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, prefix)]
    while stack and len(errors) < MAX_ERRORS:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                if not _encodable(key):
                    errors.append(FieldError(pointer(*path), "a key holds an unpaired surrogate"))
                stack.append((child, (*path, key)))
        elif isinstance(node, list):
            if len(node) > limits.max_array_items:
                errors.append(
                    FieldError(
                        pointer(*path),
                        f"array of {len(node)} items exceeds the limit of {limits.max_array_items}",
                    )
                )
                continue
            stack.extend((child, (*path, index)) for index, child in enumerate(node))
        elif isinstance(node, str) and not _encodable(node):
            errors.append(FieldError(pointer(*path), "string holds an unpaired UTF-16 surrogate"))
    return errors


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _invalid(errors: list[FieldError], what: str) -> Problem:
    return Problem(
        422,
        f"{what}: {len(errors)} field(s) over a limit or not encodable",
        slug="invalid-payload",
        errors=[{"pointer": e.pointer, "detail": e.detail} for e in errors[:MAX_ERRORS]],
    )


def parse(body: bytes, limits: Limits, *, ndjson: bool) -> list[Document | Item]:
    """The body's documents, in order, with the NDJSON records rejected on the way.

    With `ndjson` (a source that takes batches), a JSON body that turns out to be several
    documents, one per line, is read as NDJSON: forwarders often label batches
    application/json.
    """
    text = _decode(body)
    if too_deep(body, limits.max_depth):
        raise _invalid(
            [FieldError("", f"nests deeper than {limits.max_depth} levels")], "the document"
        )
    try:
        value = json_loads(text)
    except json.JSONDecodeError as exc:
        if ndjson and exc.msg == "Extra data":
            return parse_ndjson(body, limits)
        raise Problem(400, f"body is {_json_error(exc)}", slug="malformed-json") from None
    except ValueError as exc:
        raise Problem(400, f"body is {_json_error(exc)}", slug="malformed-json") from None
    errors = violations(value, limits)
    if errors:
        raise _invalid(errors, "the document")
    return [Document("", value)]


def parse_ndjson(body: bytes, limits: Limits) -> list[Document | Item]:
    """Records of a newline-delimited batch; a bad line rejects that record only.

    Records are numbered from 0, blank lines skipped: `/3` is the fourth record.
    """
    text = _decode(body)
    # Split on "\n" only: str.splitlines() would also cut at U+2028 inside a JSON string.
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        raise Problem(400, "body holds no NDJSON record", slug="malformed-json")
    if len(lines) > limits.max_array_items:
        raise _invalid(
            [FieldError("", f"{len(lines)} records exceed the limit of {limits.max_array_items}")],
            "the batch",
        )
    records: list[Document | Item] = []
    for index, line in enumerate(lines):
        where = pointer(index)
        if too_deep(line.encode(), limits.max_depth):
            errors = [FieldError(where, f"nests deeper than {limits.max_depth} levels")]
        else:
            try:
                value = json_loads(line)
            except ValueError as exc:
                errors = [FieldError(where, _json_error(exc))]
            else:
                errors = violations(value, limits, (index,))
                if not errors:
                    records.append(Document(where, value))
                    continue
        records.append(Item(where, errors=tuple(errors)))
    return records
