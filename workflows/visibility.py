"""The incidents' search attributes as Temporal's typed keys: what a run upserts, what it
starts the next run with, and how the list reads back what a run published.

The names and the published values are vocabulary (contracts/visibility.py); the typed
keys need temporalio, so they live here, beside the workflow that upserts them. The
incident client (orchestrator/temporal/) reads with the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from contracts.visibility import MEMO_KEY, Attribute, Visible

STATUS = SearchAttributeKey.for_keyword(Attribute.STATUS)
ZONES = SearchAttributeKey.for_keyword_list(Attribute.ZONES)
SEVERITY = SearchAttributeKey.for_int(Attribute.SEVERITY)
AWAITING_APPROVAL = SearchAttributeKey.for_bool(Attribute.AWAITING_APPROVAL)
ENTITY = SearchAttributeKey.for_keyword(Attribute.ENTITY)
KEYS: tuple[SearchAttributeKey[Any], ...] = (STATUS, ZONES, SEVERITY, AWAITING_APPROVAL, ENTITY)


def updates(shown: Visible) -> list[SearchAttributeUpdate[Any]]:
    return [
        STATUS.value_set(shown.status),
        ZONES.value_set(list(shown.zones)),
        SEVERITY.value_set(shown.severity),
        AWAITING_APPROVAL.value_set(shown.awaiting_approval),
        ENTITY.value_set(shown.entity),
    ]


def attributes(shown: Visible, status: str | None = None) -> TypedSearchAttributes:
    """The same values as a run's starting search attributes (continue-as-new), with the
    list status overridden for a run that must start hidden."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(STATUS, status or shown.status),
            SearchAttributePair(ZONES, list(shown.zones)),
            SearchAttributePair(SEVERITY, shown.severity),
            SearchAttributePair(AWAITING_APPROVAL, shown.awaiting_approval),
            SearchAttributePair(ENTITY, shown.entity),
        ]
    )


def published(found: TypedSearchAttributes, memo: Mapping[str, Any]) -> Visible | None:
    """What an incident published, as visibility returns it; None if it has not yet
    (started by an older version, or a moment ago)."""
    status = found.get(STATUS)
    if status is None:
        return None
    extra = memo.get(MEMO_KEY) or {}
    return Visible(
        status=status,
        zones=tuple(found.get(ZONES) or ()),
        severity=found.get(SEVERITY) or 0,
        awaiting_approval=bool(found.get(AWAITING_APPROVAL)),
        entity=found.get(ENTITY) or "",
        findings=int(extra.get("findings", 0)),
        verdict=extra.get("verdict"),
        steps=tuple(sorted((extra.get("steps") or {}).items())),
        incident_id=str(extra.get("incident_id") or ""),
        essential=bool(extra.get("essential")),
    )
