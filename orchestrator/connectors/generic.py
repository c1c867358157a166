"""`generic` source: OCSF Detection Finding JSON, one object or a list of them.

The dedupe key is the sender's own `finding_info.uid`; `activity_id` (1 create, 2 update,
3 close) says whether a finding is new, changed or resolved.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from orchestrator.connectors.base import (
    MAX_ITEMS,
    Item,
    VendorConnector,
    field_errors,
    pointer,
    raw_json,
    rejected,
)
from workflows.model import Finding

MAX_FINDINGS_PER_PAYLOAD = MAX_ITEMS


class GenericConnector(VendorConnector):
    source = "generic"
    title = "OCSF Detection Finding (class 2004) JSON"
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


def _one(item: Any, where: tuple[int, ...]) -> Item:
    if not isinstance(item, dict):
        return rejected(where, "expected a JSON object")
    # A vendor's own raw_data (any JSON type) travels inside ours instead of failing.
    document = {k: v for k, v in item.items() if k != "raw_data"}
    try:
        finding = Finding.model_validate(document)
    except ValidationError as exc:
        return Item(pointer(*where), errors=tuple(field_errors(exc, *where)))
    # Keep what the SIEM sent, verbatim, for the audit and for re-normalization.
    return Item(pointer(*where), finding=finding.model_copy(update={"raw_data": raw_json(item)}))
