"""Decisions: what the Rego policy answered for an incident, and the steps it chose.

The decide activity builds them from the policy's JSON (the decision contract of
DESIGN.md); the workflow keeps them and carries each step out.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.findings import Finding


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- Decisions -------------------------------------------------------------------------------


class Verdict(StrEnum):
    CONTAIN = "contain"
    OBSERVE = "observe"
    ESCALATE = "escalate"
    IGNORE = "ignore"


class OnTimeout(StrEnum):
    DENY = "deny"
    ESCALATE = "escalate"
    APPROVE = "approve"


class OnDrift(StrEnum):
    """What a drift check does when a held step's target is found out of its contained
    state: apply the step again, or leave the target as found and call a human."""

    REAPPLY = "reapply"
    ESCALATE = "escalate"


class Approval(_Model):
    required: int = Field(default=0, ge=0, le=5)
    # Any one of these roles qualifies a principal to approve (empty: any responder).
    roles: list[str] = Field(default_factory=list)
    # Four-eyes with seniority: among the `required` approvers, one must hold each of these.
    must_include_roles: list[str] = Field(default_factory=list)
    timeout_s: int = Field(default=900, gt=0)
    on_timeout: OnTimeout = OnTimeout.ESCALATE


class Guard(_Model):
    essential: list[str] = Field(default_factory=list)


class Reason(_Model):
    """Why a step is in the decision, or why it needs the approval it has."""

    code: str = Field(min_length=1, max_length=100)  # e.g. step.fallback, guardrail.paused
    text: str = Field(min_length=1, max_length=2000)
    refs: list[str] = Field(default_factory=list)  # asset:<id>, zone:<name>, ...


class DecisionStep(_Model):
    id: str = Field(min_length=1, max_length=200)
    adapter: str
    action: str
    target: dict[str, Any]
    args: dict[str, Any] = Field(default_factory=dict)
    approval: Approval = Field(default_factory=Approval)
    lease_s: int | None = Field(default=None, gt=0)
    reversible: bool = True
    guard: Guard = Field(default_factory=Guard)
    drift: OnDrift = OnDrift.REAPPLY
    # Why this step, and why its approval: the decision contract requires at least one.
    because: list[Reason] = Field(default_factory=list)


class Decision(_Model):
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list)
    steps: list[DecisionStep] = Field(default_factory=list)
    policy_version: str
    decision_id: str
    input_digest: str = ""
    # The zones of the incident's assets as the inventory resolves them (set by the
    # decide activity, not the policy): the incident list filters on them.
    zones: list[str] = Field(default_factory=list)
    # Whether any of those zones is essential in the inventory (set by the decide activity).
    essential: bool = False


class DecideRequest(_Model):
    incident_id: str
    findings: list[Finding]
    automation_paused: bool = False
