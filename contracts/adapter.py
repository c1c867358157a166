"""The adapter contract's payloads (see DESIGN.md, "Adapter"): what a step asks of a
target, what apply would change, what it did, and what was observed afterwards.

They cross the Temporal boundary as activity arguments and results, and the workflow
keeps them in its state, so they live here, below both the workflows and the adapters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StepCommand(_Frozen):
    """One containment step as the adapter sees it (OpenC2-style action on a target)."""

    incident_id: str
    step_id: str
    adapter: str
    action: str
    target: dict[str, Any]
    args: dict[str, Any] = Field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        """The key DESIGN.md fixes for apply/rollback idempotency: `incident:step`."""
        return f"{self.incident_id}:{self.step_id}"


class Plan(_Frozen):
    """What apply would change, computed without touching the target."""

    adapter: str
    summary: str
    changes: list[str] = Field(default_factory=list)
    # The target's current state: the workflow records it as the rollback intent before
    # apply, because a retried apply only ever sees the already-changed target.
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)


# What became of one write: the target answered yes (acknowledged) or no (refused); it was
# left unconfirmed (no answer in time, or "accepted, will take a while") and a later read
# showed the value (landed_late) or never did within the settle period (not_seen); or the
# attempt ended with it in flight (interrupted).
WriteOutcome = Literal["acknowledged", "refused", "landed_late", "not_seen", "interrupted"]


class WriteRecord(_Frozen):
    """One write an adapter sent to a target, and what became of it (evidence for audit)."""

    value: Any
    purpose: Literal["apply", "rollback"]
    at: datetime  # when it was sent (UTC)
    outcome: WriteOutcome
    detail: str = ""


class Receipt(_Frozen):
    """Proof of what apply (or rollback) did, with enough state to undo it."""

    adapter: str
    key: str
    target: dict[str, Any]
    action: str
    applied: bool
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    detail: str = ""
    # Every write made for this step, oldest first, including those of attempts that failed
    # (a retried apply lists the timed-out write of the attempt before it). Adapters that do
    # not track writes leave it empty; payloads from before it existed read as empty.
    writes: list[WriteRecord] = Field(default_factory=list)


class Verification(_Frozen):
    """What the adapter observed on the real target after apply or rollback."""

    ok: bool
    observed: dict[str, Any] = Field(default_factory=dict)
    detail: str = ""


class Capabilities(_Frozen):
    adapter: str
    usable: bool
    actions: list[str]
    detail: str = ""


# An inventory record whose endpoint is this word (or that names none) means the lab's
# server on this host. The orchestrator's wiring says where that is, in one place
# (orchestrator/wiring/adapters.py), and refuses such records outside the lab.
LAB_ENDPOINT = "lab"
