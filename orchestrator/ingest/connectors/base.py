"""What every connector does: turn a vendor payload into normalized findings, item by item.

A payload may carry many alerts (Alertmanager groups, Elastic rule runs, OCSF lists,
Suricata NDJSON batches). Each alert becomes one `Item`: a finding, or the errors that
kept it from becoming one, or the reason it was skipped. Connectors never raise on any
JSON document: an alert that cannot be normalized is a rejected item, so one bad alert
does not sink its neighbours and the sender learns exactly which one was bad.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from contracts.findings import Finding

# Alerts one payload may carry (Alertmanager groups, Elastic rule runs, OCSF lists, EVE
# batches): each becomes a Temporal signal, so a payload is bounded in work, not only bytes.
MAX_ITEMS = 1000

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class FieldError:
    pointer: str  # RFC 6901 JSON pointer into the posted document
    detail: str


class InvalidPayload(Exception):  # noqa: N818 - reads as "raise InvalidPayload(...)"
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.pointer}: {e.detail}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Item:
    """One alert of a payload: exactly one of finding, errors or ignored is set."""

    pointer: str  # where the alert sits in the posted document ("" for the whole of it)
    finding: Finding | None = None
    errors: tuple[FieldError, ...] = field(default=())
    ignored: str | None = None

    def at(self, prefix: str) -> Item:
        """The same item inside a larger document (an NDJSON line, say)."""
        return Item(
            pointer=prefix + self.pointer,
            finding=self.finding,
            errors=tuple(FieldError(prefix + e.pointer, e.detail) for e in self.errors),
            ignored=self.ignored,
        )


class Connector(Protocol):
    source: ClassVar[str]  # the {source} of POST /v1/webhooks/{source}
    title: ClassVar[str]  # what the vendor calls the thing that posts (docs, OpenAPI)
    ndjson: ClassVar[bool]  # also accepts newline-delimited JSON, one alert per line

    def items(self, payload: Any, received_at_ms: int) -> list[Item]:
        """Every alert of a parsed JSON document; never raises."""
        ...

    def normalize(self, payload: Any, received_at_ms: int | None = None) -> list[Finding]:
        """All findings of the document, or InvalidPayload naming every bad field."""
        ...


class VendorConnector:
    """The shared half of every connector: `normalize` is `items`, all or nothing."""

    source: ClassVar[str]
    title: ClassVar[str]
    ndjson: ClassVar[bool] = False

    def items(self, payload: Any, received_at_ms: int) -> list[Item]:
        raise NotImplementedError

    def normalize(self, payload: Any, received_at_ms: int | None = None) -> list[Finding]:
        now = int(time.time() * 1000) if received_at_ms is None else received_at_ms
        return all_or_nothing(self.items(payload, now))


def all_or_nothing(items: list[Item]) -> list[Finding]:
    """The findings when no item was rejected; InvalidPayload with every error otherwise."""
    errors = [error for item in items for error in item.errors]
    if errors:
        raise InvalidPayload(errors)
    return [item.finding for item in items if item.finding is not None]


def pointer(*parts: str | int) -> str:
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "/" + "/".join(escaped) if parts else ""


def field_errors(exc: ValidationError, *prefix: str | int) -> list[FieldError]:
    return [
        FieldError(pointer=pointer(*prefix, *err["loc"]), detail=err["msg"])
        for err in exc.errors(include_url=False)
    ]


def raw_json(document: Any) -> str:
    """The vendor's own JSON, whole, for the responders and re-normalization. It is
    bounded by the body limit only: the API moves it to the raw store (claim check,
    orchestrator/ingest/raw_store.py) before the finding reaches a workflow."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


class Reject(Exception):  # noqa: N818 - raised by a mapping: "this alert is rejected"
    """Raised while mapping a validated alert that still cannot become a finding."""

    def __init__(self, *path: str | int, detail: str) -> None:
        super().__init__(detail)
        self.path = path
        self.detail = detail


def validated(model: type[M], payload: Any) -> M | Item:
    """The payload's envelope (the part around its alerts), or the item rejecting it."""
    if not isinstance(payload, dict):
        return rejected((), "expected a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        return Item("", errors=tuple(field_errors(exc)))


def rejected(where: tuple[str | int, ...], detail: str, *, item: str | None = None) -> Item:
    """An item rejected for one reason; `item` is the alert's pointer if not `where`."""
    here = pointer(*where)
    return Item(here if item is None else item, errors=(FieldError(here, detail),))


def convert(
    model: type[M],
    document: Any,
    where: tuple[str | int, ...],
    build: Callable[[M], Finding | str],
) -> Item:
    """Validate one vendor alert with its model, then map it; errors point into the payload.

    `build` returns the finding, or a string saying why this alert is skipped (a Suricata
    flow record in a batch of EVE events, say).
    """
    here = pointer(*where)
    if not isinstance(document, dict):
        return rejected(where, "expected a JSON object")
    try:
        vendor = model.model_validate(document)
    except ValidationError as exc:
        return Item(here, errors=tuple(field_errors(exc, *where)))
    try:
        built = build(vendor)
    except Reject as exc:
        return rejected((*where, *exc.path), exc.detail, item=here)
    except ValidationError as exc:
        # The vendor model admitted something the OCSF model refuses: a connector bug,
        # but still the sender's alert that could not be taken, so say so at its place.
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return rejected(where, f"cannot be normalized to an OCSF finding: {details}")
    if isinstance(built, str):
        return Item(here, ignored=built)
    return Item(here, finding=built)


def each(
    documents: Iterable[Any],
    where: tuple[str | int, ...],
    one: Callable[[Any, tuple[str | int, ...]], Item],
) -> list[Item]:
    """Apply `one` to every element of a list, pointing at each by its index."""
    return [one(document, (*where, index)) for index, document in enumerate(documents)]
