"""What a responder sends with an action: a reason for the audit trail, a lease extension.

The JSON API reads these as request bodies and the console from its forms, so both hold
a responder to the same limits, with the same messages when one is not met.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_LEASE_S = 7 * 24 * 3600


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonBody(_Body):
    reason: str = Field(min_length=1, max_length=2000, description="why, for the audit trail")


class ExtendBody(_Body):
    lease_s: int = Field(gt=0, le=MAX_LEASE_S, description="seconds added to the lease")
    reason: str = Field(default="", max_length=2000)
