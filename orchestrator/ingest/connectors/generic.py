"""`generic` source: OCSF findings as their producers send them, one object or a list.

Accepted (docs/SIEMS.md, "Generic (OCSF)"):
- OCSF 1.x Detection Finding (class_uid 2004) and Security Finding (2001), validated for
  what OCSF requires and nothing more (orchestrator/ingest/connectors/ocsf_models.py), then
  normalized (ocsf_normalize.py). Unknown attributes are kept in `raw_data`, verbatim.
- Bulkhead's own normalized finding, the subset `GET /v1/incidents/{id}` shows under
  `findings[]` and `examples/findings/*.json` hold: a document whose top-level attributes
  are all of that subset. It carries no `category_uid` or `type_uid`, so it is not OCSF;
  it is validated as before, strictly, and passes as is.

The dedupe key is the sender's own `finding_info.uid` (`finding.uid` for 2001); the
activity (1 create, 2 update, 3 close) says whether a finding is new, changed or resolved.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from contracts.findings import Finding
from orchestrator.ingest.connectors.base import (
    MAX_ITEMS,
    FieldError,
    Item,
    VendorConnector,
    field_errors,
    pointer,
    raw_json,
    rejected,
)
from orchestrator.ingest.connectors.ocsf_models import model_for
from orchestrator.ingest.connectors.ocsf_normalize import to_finding

MAX_FINDINGS_PER_PAYLOAD = MAX_ITEMS
# Bulkhead's own form: every top-level attribute is one of the normalized Finding's.
COMPACT_ATTRIBUTES = frozenset(Finding.model_fields)


class GenericConnector(VendorConnector):
    source = "generic"
    title = "OCSF 1.x Detection Finding (2004) or Security Finding (2001) JSON"
    ndjson = False

    def items(self, payload: Any, received_at_ms: int) -> list[Item]:
        del received_at_ms  # OCSF findings carry their own `time`
        if not isinstance(payload, list):
            return [_one(payload, ())]
        if not payload:
            return [rejected((), "expected at least one finding")]
        if len(payload) > MAX_FINDINGS_PER_PAYLOAD:
            return [rejected((), f"at most {MAX_FINDINGS_PER_PAYLOAD} findings per payload")]
        return [_one(item, (index,)) for index, item in enumerate(payload)]


def is_compact(document: dict[str, Any]) -> bool:
    """Bulkhead's own normalized form rather than an OCSF event."""
    return document.keys() <= COMPACT_ATTRIBUTES


# OCSF integers that pydantic (lax) would take as `true`, `4.0` or `"4"`.
INTEGER_ATTRIBUTES = frozenset(
    {"class_uid", "activity_id", "severity_id", "confidence_id", "time", "port", "type_id"}
)


def compact_errors(document: dict[str, Any], where: tuple[int, ...]) -> list[FieldError]:
    """What Bulkhead's own form must hold beyond its model: `class_uid`, and integers
    that are integers (JSON `true` and `4.0` are not OCSF ids)."""
    errors: list[FieldError] = []
    if "class_uid" not in document:
        errors.append(FieldError(pointer(*where, "class_uid"), "Field required"))
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, where)]
    while stack:
        node, path = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in children:
            if key == "raw_data":
                continue
            if isinstance(value, dict | list):
                stack.append((value, (*path, key)))
            elif key in INTEGER_ATTRIBUTES and isinstance(value, bool | float | str):
                errors.append(FieldError(pointer(*path, key), "must be an integer"))
    return errors


def _one(item: Any, where: tuple[int, ...]) -> Item:
    if not isinstance(item, dict):
        return rejected(where, "expected a JSON object")
    here = pointer(*where)
    if is_compact(item):
        errors = compact_errors(item, where)
        # A vendor's own raw_data (any JSON type) travels inside ours instead of failing.
        document = {k: v for k, v in item.items() if k != "raw_data"}
        try:
            finding = Finding.model_validate(document)
        except ValidationError as exc:
            named = {e.pointer for e in errors}
            errors += [e for e in field_errors(exc, *where) if e.pointer not in named]
        if errors:
            return Item(here, errors=tuple(errors))
        # Keep what the SIEM sent, verbatim, for the audit and for re-normalization.
        return Item(here, finding=finding.model_copy(update={"raw_data": raw_json(item)}))
    try:
        ocsf = model_for(item).model_validate(item)
    except ValidationError as exc:
        return Item(here, errors=tuple(field_errors(exc, *where)))
    try:
        return Item(here, finding=to_finding(ocsf, raw_json(item)))
    except ValidationError as exc:
        # The OCSF models admitted something the Finding model refuses: a Bulkhead bug,
        # but still the sender's finding that could not be taken, so say so at its place.
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return rejected(where, f"cannot be normalized: {details}")
