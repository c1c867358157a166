"""Findings: what a SIEM reported, normalized to OCSF, as the workflow keeps it.

Pure pydantic models (no I/O); the orchestrator builds them at the edges and the workflow
keeps them in its state. Field names follow OCSF (Detection Finding, class 2004) and the
incident JSON of DESIGN.md, which are stable contracts.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- Findings (OCSF Detection Finding subset) ---------------------------------------------


class SeverityId(IntEnum):
    UNKNOWN = 0
    INFORMATIONAL = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5
    FATAL = 6
    OTHER = 99


class ConfidenceId(IntEnum):
    UNKNOWN = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    OTHER = 99


class ActivityId(IntEnum):
    UNKNOWN = 0
    CREATE = 1
    UPDATE = 2
    CLOSE = 3
    OTHER = 99


class Analytic(_Model):
    uid: str | None = None
    name: str | None = None
    type_id: int | None = None


class FindingInfo(_Model):
    uid: str = Field(min_length=1, max_length=256)
    # No upper bound here: a SIEM's long title is taken and cut by workflows/compact.py.
    title: str = Field(min_length=1)
    desc: str | None = None
    analytic: Analytic | None = None


class Resource(_Model):
    """An affected asset; `uid` is the inventory asset id when the SIEM knows it."""

    uid: str = Field(min_length=1, max_length=256)
    name: str | None = None
    type: str | None = None
    zone: str | None = None


class Endpoint(_Model):
    ip: str | None = None
    hostname: str | None = None
    port: int | None = None


class User(_Model):
    name: str | None = None
    uid: str | None = None


class Evidence(_Model):
    src_endpoint: Endpoint | None = None
    dst_endpoint: Endpoint | None = None
    user: User | None = None


class Product(_Model):
    name: str
    vendor_name: str | None = None


class Metadata(_Model):
    product: Product
    version: str = "1.3.0"


class RawRef(_Model):
    """Where a finding's raw payload is kept: the content-addressed store, by digest."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class Finding(_Model):
    class_uid: Literal[2004] = 2004
    activity_id: ActivityId = ActivityId.CREATE
    finding_info: FindingInfo
    severity_id: SeverityId
    confidence_id: ConfidenceId = ConfidenceId.UNKNOWN
    time: int = Field(ge=0, description="event time, epoch milliseconds")
    resources: list[Resource] = Field(default_factory=list)
    evidences: list[Evidence] = Field(default_factory=list)
    metadata: Metadata
    # The vendor's own payload: set by connectors, moved to the raw store (and named by
    # raw_ref) before the finding reaches a workflow.
    raw_data: str | None = None
    raw_ref: RawRef | None = None
    # JSON pointers of the fields workflows/compact.py cut to keep the incident bounded.
    truncated: list[str] = Field(default_factory=list)


class FindingEnvelope(_Model):
    """A normalized finding plus how it reached Bulkhead."""

    finding: Finding
    source: str
    webhook_id: str | None = None
    received_at_ms: int
