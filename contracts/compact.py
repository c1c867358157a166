"""Bounded findings: what an incident keeps of a finding, whatever the finding weighs.

A SIEM decides how big a finding is, and an attacker decides much of what is in it
(packet bytes, command lines, file names). Workflow state, queries and the continue-as-new
carry must stay far below Temporal's payload and history limits however many findings
arrive and however large they are, so the workflow keeps a compact summary: texts cut and
marked so, at most a few dozen resources and evidences, every string bounded, and the
whole serialized finding under FINDING_BYTES. The vendor's raw payload lives outside
history in a content-addressed store (orchestrator/ingest/raw_store.py), named by `raw_ref`.

Pure functions, used by the API before a finding crosses into Temporal and again by the
workflow on receipt (a finding that did not come through the API is bounded all the same).
`compact` is idempotent: a compacted finding compacts to itself.
"""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar

from contracts.findings import Endpoint, Evidence, Finding, Resource, User

FINDING_BYTES = 16 * 1024  # one kept finding, serialized as JSON
TITLE_CHARS = 512
DESC_CHARS = 2048
TEXT_CHARS = 256  # every other string a finding keeps
MAX_RESOURCES = 32
MAX_EVIDENCES = 32
RAW_INLINE_CHARS = 2048  # a small raw_data that did not go to the store stays inline
ELLIPSIS = "…"

T = TypeVar("T")


def compact(finding: Finding) -> Finding:
    """The finding bounded field by field, then as a whole; every cut is named in
    `truncated` (JSON pointers into the finding as received)."""
    cut: set[str] = set(finding.truncated)
    info = finding.finding_info
    analytic = info.analytic
    bounded = finding.model_copy(
        update={
            "finding_info": info.model_copy(
                update={
                    "title": _clip(info.title, TITLE_CHARS, "/finding_info/title", cut),
                    "desc": _clip(info.desc, DESC_CHARS, "/finding_info/desc", cut),
                    "analytic": None
                    if analytic is None
                    else analytic.model_copy(
                        update={
                            "uid": _clip(analytic.uid, TEXT_CHARS, "/finding_info/analytic", cut),
                            "name": _clip(analytic.name, TEXT_CHARS, "/finding_info/analytic", cut),
                        }
                    ),
                }
            ),
            "resources": [
                _resource(r, f"/resources/{i}", cut)
                for i, r in enumerate(_first(finding.resources, MAX_RESOURCES, "/resources", cut))
            ],
            "evidences": [
                _evidence(e, f"/evidences/{i}", cut)
                for i, e in enumerate(_first(finding.evidences, MAX_EVIDENCES, "/evidences", cut))
            ],
            "metadata": finding.metadata.model_copy(
                update={
                    "product": finding.metadata.product.model_copy(
                        update={
                            "name": _clip(
                                finding.metadata.product.name, TEXT_CHARS, "/metadata", cut
                            ),
                            "vendor_name": _clip(
                                finding.metadata.product.vendor_name, TEXT_CHARS, "/metadata", cut
                            ),
                        }
                    ),
                    "version": _clip(finding.metadata.version, TEXT_CHARS, "/metadata", cut),
                }
            ),
            "raw_data": _inline_raw(finding.raw_data, cut),
        }
    )
    return _within_budget(bounded, cut)


def size_of(finding: Finding) -> int:
    """Bytes of the finding as it travels through Temporal (JSON, UTF-8)."""
    return len(finding.model_dump_json().encode())


def short_key(key: str) -> str:
    """A fixed-size stand-in for a dedupe or picture key: the workflow remembers many of
    them, and a key built from a sender's 256-character uid must not cost 256 bytes."""
    return "h:" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _within_budget(finding: Finding, cut: set[str]) -> Finding:
    """Drop evidences, then resources (halving, keeping the first), then the description,
    until the finding fits; the first resource and evidence go last: they name the entity."""
    while size_of(finding) > FINDING_BYTES:
        update = _next_cut(finding, cut)
        if update is None:  # cannot happen with the limits above; kept for the types
            break
        finding = finding.model_copy(update=update)
    return finding.model_copy(update={"truncated": sorted(cut)})


def _next_cut(finding: Finding, cut: set[str]) -> dict[str, Any] | None:
    if len(finding.evidences) > 1:
        cut.add("/evidences")
        return {"evidences": finding.evidences[: len(finding.evidences) // 2]}
    if len(finding.resources) > 1:
        cut.add("/resources")
        return {"resources": finding.resources[: len(finding.resources) // 2]}
    if finding.finding_info.desc:
        cut.add("/finding_info/desc")
        return {"finding_info": finding.finding_info.model_copy(update={"desc": None})}
    if finding.evidences:
        cut.add("/evidences")
        return {"evidences": []}
    if finding.resources:
        cut.add("/resources")
        return {"resources": []}
    return None


def _clip(text: str | None, limit: int, pointer: str, cut: set[str]) -> str | None:
    if text is None or len(text) <= limit:
        return text
    cut.add(pointer)
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def _first(items: list[T], limit: int, pointer: str, cut: set[str]) -> list[T]:
    if len(items) > limit:
        cut.add(pointer)
    return items[:limit]


def _inline_raw(raw: str | None, cut: set[str]) -> str | None:
    if raw is None or len(raw) <= RAW_INLINE_CHARS:
        return raw
    cut.add("/raw_data")
    return None


def _resource(resource: Resource, pointer: str, cut: set[str]) -> Resource:
    return resource.model_copy(
        update={
            "name": _clip(resource.name, TEXT_CHARS, pointer, cut),
            "type": _clip(resource.type, TEXT_CHARS, pointer, cut),
            "zone": _clip(resource.zone, TEXT_CHARS, pointer, cut),
        }
    )


def _evidence(evidence: Evidence, pointer: str, cut: set[str]) -> Evidence:
    return Evidence(
        src_endpoint=_endpoint(evidence.src_endpoint, pointer, cut),
        dst_endpoint=_endpoint(evidence.dst_endpoint, pointer, cut),
        user=None
        if evidence.user is None
        else User(
            name=_clip(evidence.user.name, TEXT_CHARS, pointer, cut),
            uid=_clip(evidence.user.uid, TEXT_CHARS, pointer, cut),
        ),
    )


def _endpoint(endpoint: Endpoint | None, pointer: str, cut: set[str]) -> Endpoint | None:
    if endpoint is None:
        return None
    return endpoint.model_copy(
        update={
            "ip": _clip(endpoint.ip, TEXT_CHARS, pointer, cut),
            "hostname": _clip(endpoint.hostname, TEXT_CHARS, pointer, cut),
        }
    )
