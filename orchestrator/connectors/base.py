"""What every connector does: turn a vendor payload into normalized findings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from workflows.model import Finding


@dataclass(frozen=True)
class FieldError:
    pointer: str  # RFC 6901 JSON pointer into the posted document
    detail: str


class InvalidPayload(Exception):  # noqa: N818 - reads as "raise InvalidPayload(...)"
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.pointer}: {e.detail}" for e in errors))
        self.errors = errors


class Connector(Protocol):
    source: str

    def normalize(self, payload: Any) -> list[Finding]: ...


def pointer(*parts: str | int) -> str:
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "/" + "/".join(escaped) if parts else ""


def field_errors(exc: ValidationError, *prefix: str | int) -> list[FieldError]:
    return [
        FieldError(pointer=pointer(*prefix, *err["loc"]), detail=err["msg"])
        for err in exc.errors(include_url=False)
    ]
