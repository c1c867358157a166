"""The city right now, as `GET /v1/city` answers it and the map draws it.

One JSON document a duty officer's screen, `bulkhead status` and the console read alike.
Every time in it is UTC, ISO 8601. A source that could not be read is named in
`unavailable` and its part left empty (`None`, not zero): a picture that says "I could
not see" beats a 503 that shows nothing, and must never read as "all is normal".
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ZoneState = Literal["unhealthy", "awaiting_approval", "contained", "normal"]
# Worst first: a zone shows the first of these that applies to it.
STATE_ORDER: tuple[ZoneState, ...] = ("unhealthy", "awaiting_approval", "contained", "normal")
STATE_WORDS: dict[str, str] = {
    "unhealthy": "essential service unhealthy",
    "awaiting_approval": "awaiting approval",
    "contained": "contained",
    "normal": "normal",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Automation(_Model):
    paused: bool | None = Field(description="None when the city record could not be read")
    changed_by: str | None = None
    changed_at: str | None = None
    reason: str | None = None


class Budget(_Model):
    """The blast-radius budget: automatic containments in force, of the policy's maximum."""

    used: int | None = Field(description="from the city record; None when unreadable")
    max: int | None = Field(description="guardrails.blast_radius.max_automatic_containments")


class Contained(_Model):
    """A step that holds an asset contained (applied or verified)."""

    incident_id: str
    step_id: str
    adapter: str
    action: str
    target: str = Field(description="what the step acts on, in words: an asset, a zone, ...")
    state: str
    automatic: bool = True
    since: str | None = None
    lease_expires_at: str | None = None


class Waiting(_Model):
    """A step waiting for people to approve it."""

    incident_id: str
    step_id: str
    zone: str | None = None
    target: str
    approval_deadline: str | None = None
    overdue: bool = False
    overdue_since: str | None = None


class Service(_Model):
    id: str
    healthy: bool | None = Field(description="None: no probe, or not probed")
    detail: str = ""


class Zone(_Model):
    id: str
    description: str = ""
    criticality: str = ""
    essential: bool = False
    state: ZoneState
    states: list[ZoneState] = Field(description="every state that applies, worst first")
    contained: list[Contained] = Field(default_factory=list)
    awaiting_approval: int = 0
    overdue: int = 0
    services: list[Service] = Field(default_factory=list)


class ConduitEnd(_Model):
    cidr: str
    zone: str | None = Field(description="the zone this address lies in; None: outside all")


class Conduit(_Model):
    """A management path a containment keeps open."""

    id: str
    description: str = ""
    cidrs: list[ConduitEnd] = Field(default_factory=list)


class EnforcementPoint(_Model):
    id: str
    description: str = ""
    zones: list[str] = Field(default_factory=list)


class Approvals(_Model):
    pending: int | None = Field(description="steps awaiting approval; None when unreadable")
    overdue: int | None = None
    waiting: list[Waiting] = Field(default_factory=list, description="oldest deadline first")


class Recent(_Model):
    incident_id: str
    status: str
    entity: str = ""
    zones: list[str] = Field(default_factory=list)
    severity_id: int = 0


class CityPicture(_Model):
    city: str
    generated_at: str = Field(description="UTC, ISO 8601")
    timezone: Literal["UTC"] = "UTC"
    automation: Automation
    budget: Budget
    zones: list[Zone] = Field(default_factory=list)
    conduits: list[Conduit] = Field(default_factory=list)
    enforcement_points: list[EnforcementPoint] = Field(default_factory=list)
    approvals: Approvals
    recent: list[Recent] = Field(default_factory=list, description="escalated or released")
    unavailable: list[str] = Field(
        default_factory=list, description="what could not be read, and why; its part is empty"
    )
    truncated: bool = Field(
        default=False, description="more incidents hold steps than were read one by one"
    )


def worst(states: set[str]) -> ZoneState:
    return next((s for s in STATE_ORDER if s in states), "normal")


def ordered(states: set[str]) -> list[ZoneState]:
    """The states that apply, worst first; `normal` only when no other does."""
    found: list[ZoneState] = [s for s in STATE_ORDER if s in states and s != "normal"]
    return found or ["normal"]
